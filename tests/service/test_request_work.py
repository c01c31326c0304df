"""Large request work runs in threads, never more at once than the limit; small work inline."""

import threading
import time

import anyio
import pytest

from service.inference.work import run_request_work
from tests.support.event_loop import run_on_own_thread

TASKS = 6


class ConcurrencyProbe:
    """Records how many calls overlap, and on which threads they ran."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.active = 0
        self.most_active = 0
        self.threads: set[int] = set()

    def work(self, value: int) -> int:
        with self._lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
            self.threads.add(threading.get_ident())
        time.sleep(0.02)
        with self._lock:
            self.active -= 1
        return value * 2


@pytest.mark.parametrize("limit", [1, 2])
def test_large_work_never_exceeds_the_thread_limit(limit: int) -> None:
    probe = ConcurrencyProbe()
    results: list[int] = []

    async def main() -> None:
        limiter = anyio.CapacityLimiter(limit)

        async def one(value: int) -> None:
            results.append(await run_request_work(limiter, probe.work, value, inline=False))

        async with anyio.create_task_group() as group:
            for value in range(TASKS):
                group.start_soon(one, value)

    run_on_own_thread(main())
    assert sorted(results) == [value * 2 for value in range(TASKS)]
    assert 1 <= probe.most_active <= limit
    assert threading.get_ident() not in probe.threads


def test_small_work_runs_inline_on_the_event_loop_thread() -> None:
    probe = ConcurrencyProbe()

    async def main() -> tuple[int, int]:
        limiter = anyio.CapacityLimiter(1)
        return await run_request_work(limiter, probe.work, 21, inline=True), threading.get_ident()

    result, loop_thread = run_on_own_thread(main())
    assert result == 42 and probe.threads == {loop_thread}
