"""The in-flight memory budget (MNIST_MAX_INFLIGHT_BYTES): requests that fit run at once, the
rest wait their turn in order for a bounded time, then are refused with 503 + Retry-After
(gRPC RESOURCE_EXHAUSTED); nothing leaks when a block fails or a waiter is cancelled."""

import asyncio
from collections.abc import Coroutine
from typing import Any

import grpc
import pytest
from pydantic import ValidationError

from service.grpc.status import status_code
from service.inference.budget import InflightBudget
from service.inference.errors import Overloaded, PayloadTooLarge
from service.settings import Settings

MiB = 1024 * 1024


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, timeout=10))


def test_a_reservation_that_fits_is_held_while_its_block_runs_and_given_back_after() -> None:
    async def scenario() -> list[int]:
        budget = InflightBudget(10 * MiB, wait_seconds=1)
        seen = []
        async with budget.reserve(3 * MiB) as reservation:
            seen.append(budget.in_use)
            await reservation.extend(2 * MiB)
            seen.append(budget.in_use)
            reservation.shrink(4 * MiB)
            seen.append(budget.in_use)
        seen.append(budget.in_use)
        return seen

    assert run(scenario()) == [3 * MiB, 5 * MiB, 1 * MiB, 0]


def test_a_failing_block_gives_its_share_back() -> None:
    async def scenario() -> int:
        budget = InflightBudget(10 * MiB, wait_seconds=1)
        with pytest.raises(RuntimeError):
            async with budget.reserve(6 * MiB):
                raise RuntimeError("decoding failed")
        return budget.in_use

    assert run(scenario()) == 0


def test_a_request_that_does_not_fit_waits_until_room_is_given_back() -> None:
    async def scenario() -> list[str]:
        budget = InflightBudget(10 * MiB, wait_seconds=5)
        events = []

        async def hold(name: str, nbytes: int, seconds: float) -> None:
            async with budget.reserve(nbytes):
                events.append(f"{name} in")
                await asyncio.sleep(seconds)
            events.append(f"{name} out")

        first = asyncio.create_task(hold("first", 8 * MiB, 0.2))
        await asyncio.sleep(0.01)
        await hold("second", 8 * MiB, 0)
        await first
        return events

    assert run(scenario()) == ["first in", "first out", "second in", "second out"]


def test_waiters_are_served_in_order_a_small_one_does_not_overtake_a_large_one() -> None:
    async def scenario() -> list[str]:
        budget = InflightBudget(10 * MiB, wait_seconds=5)
        order = []

        async def enter(name: str, nbytes: int) -> None:
            async with budget.reserve(nbytes):
                order.append(name)
                await asyncio.sleep(0.05)

        async with budget.reserve(6 * MiB):
            large = asyncio.create_task(enter("large", 9 * MiB))
            await asyncio.sleep(0.01)
            # 1 MiB would fit beside the 6 held, but the large request came first.
            small = asyncio.create_task(enter("small", 1 * MiB))
            await asyncio.sleep(0.05)
            assert budget.waiting == 2
        await asyncio.gather(large, small)
        return order

    assert run(scenario()) == ["large", "small"]


def test_a_small_request_passes_a_queue_it_fits_beside() -> None:
    """A 10 KiB request is not refused behind an 8 MiB one waiting for room: it fits now, and
    holds its share for far less time than the large one waits."""

    async def scenario() -> list[str]:
        budget = InflightBudget(10 * MiB, wait_seconds=5)
        order: list[str] = []

        async def enter_and_note(name: str, nbytes: int) -> None:
            async with budget.reserve(nbytes):
                order.append(name)

        async with budget.reserve(6 * MiB):
            large = asyncio.create_task(enter_and_note("large", 8 * MiB))
            await asyncio.sleep(0.01)
            await asyncio.create_task(enter_and_note("small", 10 * 1024))
            await asyncio.sleep(0.01)
            assert budget.waiting == 1
        await large
        return order

    assert run(scenario()) == ["small", "large"]


def test_past_the_wait_a_request_is_refused_with_503_and_retry_after() -> None:
    async def scenario() -> tuple[Overloaded, float, int]:
        budget = InflightBudget(10 * MiB, wait_seconds=0.2)
        loop = asyncio.get_running_loop()
        async with budget.reserve(8 * MiB):
            started = loop.time()
            with pytest.raises(Overloaded) as refusal:
                await asyncio.create_task(enter(budget, 4 * MiB))  # another request
            waited = loop.time() - started
        return refusal.value, waited, budget.in_use

    error, waited, in_use = run(scenario())
    assert 0.2 <= waited < 1.0
    assert in_use == 0
    assert error.status_code == 503
    assert error.reason == "overloaded"
    assert error.headers == {"Retry-After": "1"}
    assert error.message == (
        f"the service is busy: {8 * MiB} bytes of requests are in flight and this request needs "
        f"{4 * MiB} more than the {10 * MiB} it may hold; retry shortly"
    )
    assert status_code(error) == grpc.StatusCode.RESOURCE_EXHAUSTED


async def enter(budget: InflightBudget, nbytes: int) -> None:
    async with budget.reserve(nbytes):
        pass


def test_no_wait_refuses_at_once() -> None:
    async def scenario() -> float:
        budget = InflightBudget(10 * MiB, wait_seconds=0)
        loop = asyncio.get_running_loop()
        async with budget.reserve(10 * MiB):
            started = loop.time()
            with pytest.raises(Overloaded):
                await budget.acquire(1)
            return loop.time() - started

    assert run(scenario()) < 0.1


def test_a_request_larger_than_the_whole_budget_is_refused_at_once_with_413() -> None:
    async def scenario() -> list[PayloadTooLarge]:
        budget = InflightBudget(10 * MiB, wait_seconds=5)
        errors = []
        with pytest.raises(PayloadTooLarge) as alone:
            async with budget.reserve(11 * MiB):
                pass
        errors.append(alone.value)
        async with budget.reserve(6 * MiB) as reservation:
            with pytest.raises(PayloadTooLarge) as grown:
                await reservation.extend(5 * MiB)
            errors.append(grown.value)
            assert reservation.nbytes == 6 * MiB
        assert budget.in_use == 0
        return errors

    alone, grown = run(scenario())
    assert alone.status_code == 413
    assert alone.reason == "over_inflight_budget"
    assert grown.message == (
        f"this request needs {11 * MiB} bytes of memory in flight; the service holds at most "
        f"{10 * MiB} (MNIST_MAX_INFLIGHT_BYTES)"
    )


def test_a_cancelled_waiter_leaves_nothing_behind_and_the_next_one_is_served() -> None:
    async def scenario() -> tuple[int, int]:
        budget = InflightBudget(10 * MiB, wait_seconds=5)
        await budget.acquire(7 * MiB)
        cancelled = asyncio.create_task(budget.acquire(8 * MiB))
        await asyncio.sleep(0.01)
        patient = asyncio.create_task(budget.acquire(2 * MiB))
        await asyncio.sleep(0.01)
        cancelled.cancel()
        await asyncio.gather(cancelled, return_exceptions=True)
        await patient  # 7 + 2 fit once the waiter before it is gone
        in_use_with_patient = budget.in_use
        budget.release(7 * MiB)
        budget.release(2 * MiB)
        return in_use_with_patient, budget.in_use

    assert run(scenario()) == (9 * MiB, 0)


def test_a_waiter_cancelled_in_the_turn_it_was_granted_gives_the_bytes_back() -> None:
    async def scenario() -> int:
        budget = InflightBudget(10 * MiB, wait_seconds=5)
        await budget.acquire(10 * MiB)
        waiter = asyncio.create_task(budget.acquire(4 * MiB))
        await asyncio.sleep(0.01)
        budget.release(10 * MiB)  # grants the waiter's 4 MiB ...
        waiter.cancel()  # ... which is cancelled before it runs again
        await asyncio.gather(waiter, return_exceptions=True)
        return budget.in_use

    assert run(scenario()) == 0


def test_a_reservation_inside_another_of_the_same_request_grows_its_share() -> None:
    """The core's reservation inside the transport's: one share, which grows ahead of the
    requests waiting to be admitted."""

    async def scenario() -> list[object]:
        budget = InflightBudget(10 * MiB, wait_seconds=5)
        seen: list[object] = []
        async with budget.reserve(4 * MiB) as outer:
            newcomer = asyncio.create_task(enter(budget, 7 * MiB))  # waits for room
            await asyncio.sleep(0.01)
            async with budget.reserve(5 * MiB) as inner:  # 9 MiB: fits, newcomer or not
                seen += [outer.nbytes, inner.nbytes, budget.in_use, budget.holders]
            seen += [outer.nbytes, budget.in_use]
        await newcomer
        seen.append(budget.in_use)
        return seen

    assert run(scenario()) == [9 * MiB, 5 * MiB, 9 * MiB, 1, 4 * MiB, 4 * MiB, 0]


def test_requests_that_all_wait_to_grow_are_not_left_waiting_for_nothing() -> None:
    """Two requests each hold 4 MiB of 10 and each wants 4 more: the second to ask would
    wait for a share only the first can give back, while the first waits too. It is refused at
    once (not after the wait), its share goes back, and the first grows."""

    async def scenario() -> tuple[list[str], float]:
        budget = InflightBudget(10 * MiB, wait_seconds=5)
        outcome: list[str] = []
        both_hold = asyncio.Barrier(2)

        async def request(name: str) -> None:
            try:
                async with budget.reserve(4 * MiB) as reservation:
                    await both_hold.wait()
                    await reservation.extend(4 * MiB)
                    outcome.append(f"{name} grew")
            except Overloaded:
                outcome.append(f"{name} refused")

        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.gather(request("first"), request("second"))
        return outcome, loop.time() - started

    outcome, took = run(scenario())
    assert sorted(outcome) == ["first grew", "second refused"] or sorted(outcome) == [
        "first refused",
        "second grew",
    ]
    assert took < 1.0


@pytest.mark.parametrize(
    ("capacity", "wait_seconds"), [(0, 1.0), (10, -1.0)], ids=["empty", "negative wait"]
)
def test_a_budget_refuses_nonsense_settings(capacity: int, wait_seconds: float) -> None:
    with pytest.raises(ValueError):
        InflightBudget(capacity, wait_seconds)


def test_negative_reservations_and_over_release_are_refused() -> None:
    async def scenario() -> None:
        budget = InflightBudget(10, wait_seconds=0)
        with pytest.raises(ValueError):
            await budget.acquire(-1)
        with pytest.raises(ValueError):
            budget.release(1)
        async with budget.reserve(4) as reservation:
            with pytest.raises(ValueError):
                reservation.shrink(5)

    run(scenario())


def test_the_request_body_limit_must_fit_in_the_budget() -> None:
    with pytest.raises(ValidationError, match="max_request_bytes cannot exceed half of max_infl"):
        Settings(max_request_bytes=32 * MiB, max_inflight_bytes=48 * MiB)
