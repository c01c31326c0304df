"""The in-flight memory budget: how many bytes of requests one process reads, decodes and infers
at once, over REST and gRPC together (``MNIST_MAX_INFLIGHT_BYTES``).

Every limit per request (body size, pixels, batch size) bounds one request; this bounds their sum,
which is what a pod's memory limit is about. A transport reserves what a request will hold before
it holds it (the declared body size before reading it, the decoded size before decoding) and
gives it back when the answer is written::

    async with dataplane.inflight.reserve(len(body)) as reservation:
        ...
        await reservation.extend(decoded_bytes)

A reservation entered inside another (the core's, inside the transport's around the request)
grows the same share. A request that does not fit waits its turn, first come first served
(requests growing a share they hold ahead of new ones), for at most
``MNIST_INFLIGHT_WAIT_SECONDS``: a burst of large requests queues for the few hundred
milliseconds the ones before it take, instead of failing. Past that wait it is refused with
``Overloaded`` (503 + ``Retry-After`` over REST, RESOURCE_EXHAUSTED over gRPC): a waiting request
holds a connection but no body, and a client told to come back is better served than one kept
waiting behind a queue that does not move. A request larger than the whole budget could never
run: it gets a 413 at once.

One budget per process, on the event loop that serves both transports (``DataPlane.inflight``):
not thread-safe, and not shared between worker processes, each of which has its own.
"""

import asyncio
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from types import TracebackType

from service.inference.errors import Overloaded, PayloadTooLarge


@dataclass(slots=True)
class _Waiter:
    nbytes: int
    share: int  # the request's whole share once granted
    granted: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def was_granted(self) -> bool:
        done = self.granted.done()
        return done and not self.granted.cancelled() and self.granted.exception() is None


class InflightBudget:
    """Bytes of work in flight, at most ``capacity``; ``reserve`` takes a share for a request.

    A request asks twice or more: once to be admitted (its body), then to grow (what the body
    becomes). Admissions are first come first served, except that a small one (at most
    ``small_bytes``) may pass the queue when it fits. Growing comes first: a request already
    holding a share is closer to giving it back than one not started. A request that would
    wait to grow while every other holder waits too would wait for nothing: it is refused at
    once, and when a release leaves only such waiters, the latest of them is refused, so that
    its share lets the others go on.
    """

    def __init__(
        self, capacity: int, wait_seconds: float, observe: Callable[[int], None] | None = None
    ) -> None:
        """``observe`` is told the bytes in use whenever they change (a metric's ``set``)."""
        if capacity < 1:
            raise ValueError("an in-flight budget must hold at least one byte")
        if wait_seconds < 0:
            raise ValueError("the wait for an in-flight budget cannot be negative")
        self.capacity = capacity
        self.wait_seconds = wait_seconds
        self._observe = observe
        self._in_use = 0
        self.holders = 0
        # A request this small may pass the queue when it fits: it holds its share for
        # milliseconds, so it is not refused behind a burst of 30 MiB bodies waiting for room.
        self.small_bytes = capacity // 64
        self._admissions: deque[_Waiter] = deque()
        self._extensions: deque[_Waiter] = deque()

    @property
    def in_use(self) -> int:
        """Bytes held by requests now."""
        return self._in_use

    def _add(self, nbytes: int) -> None:
        """Bytes in use grow by ``nbytes`` (shrink, if negative); ``observe`` is told."""
        self._in_use += nbytes
        if self._observe is not None:
            self._observe(self._in_use)

    @property
    def waiting(self) -> int:
        """Requests waiting for their share, or for more of it, now."""
        queued = (*self._admissions, *self._extensions)
        return sum(1 for waiter in queued if not waiter.granted.done())

    def reserve(self, nbytes: int) -> "Reservation":
        """An async context manager holding ``nbytes`` of the budget while its block runs."""
        return Reservation(self, nbytes)

    async def acquire(self, nbytes: int) -> None:
        """Admit ``nbytes`` for a request holding nothing yet: at once when they fit and nobody
        waits before, else after a wait of at most ``wait_seconds``, else ``Overloaded``."""
        self._check_fits_at_all(nbytes, 0)
        if self._fits(nbytes) and (
            nbytes <= self.small_bytes
            or not (self._live(self._admissions) or self._live(self._extensions))
        ):
            self._add(nbytes)
            return
        await self._wait(self._admissions, nbytes, nbytes)

    async def acquire_more(self, nbytes: int, held: int) -> None:
        """``nbytes`` more for a request holding ``held``: ahead of every admission."""
        self._check_fits_at_all(nbytes, held)
        if self._fits(nbytes) and (
            held + nbytes <= self.small_bytes or not self._live(self._extensions)
        ):
            self._add(nbytes)
            return
        if self._live(self._extensions) + 1 >= self.holders:
            raise self._overloaded(nbytes)
        await self._wait(self._extensions, nbytes, held + nbytes)

    def _check_fits_at_all(self, nbytes: int, held: int) -> None:
        if nbytes < 0:
            raise ValueError("cannot reserve a negative number of bytes")
        if held + nbytes > self.capacity:
            raise PayloadTooLarge(
                f"this request needs {held + nbytes} bytes of memory in flight; the service "
                f"holds at most {self.capacity} (MNIST_MAX_INFLIGHT_BYTES)",
                reason="over_inflight_budget",
            )

    def _fits(self, nbytes: int) -> bool:
        return self._in_use + nbytes <= self.capacity

    async def _wait(self, queue: deque[_Waiter], nbytes: int, share: int) -> None:
        waiter = _Waiter(nbytes, share)
        queue.append(waiter)
        try:
            async with asyncio.timeout(self.wait_seconds):
                await waiter.granted
        except TimeoutError:
            if waiter.was_granted():
                return  # Granted in the loop turn the wait ran out: keep it.
            raise self._overloaded(nbytes) from None
        except BaseException:
            if waiter.was_granted():
                # Granted in the same loop turn as the cancellation: give it back.
                self.release(nbytes)
            raise
        finally:
            if not waiter.granted.done():
                waiter.granted.cancel()
            self._grant_waiters()

    def release(self, nbytes: int) -> None:
        """Give back ``nbytes``; the requests waiting first take them, in order."""
        if nbytes < 0 or nbytes > self._in_use:
            raise ValueError(f"cannot release {nbytes} bytes; {self._in_use} are in use")
        self._add(-nbytes)
        if self._admissions or self._extensions:
            self._grant_waiters()

    def _grant_waiters(self) -> None:
        """Growing requests first, then admissions, each first come first served (a request
        at the head is overtaken only by small ones). Then break a wait for nothing."""
        if self._grant_in_order(self._extensions):
            self._grant_in_order(self._admissions)
        else:
            self._grant_small(self._admissions)
        live = self._live(self._extensions)
        if live and live >= self.holders:
            latest = next(w for w in reversed(self._extensions) if not w.granted.done())
            latest.granted.set_exception(self._overloaded(latest.nbytes))

    def _grant_in_order(self, queue: deque[_Waiter]) -> bool:
        """Grant the head of ``queue`` while it fits, then the small requests behind it that
        fit; whether the queue is now empty."""
        while queue:
            head = queue[0]
            if head.granted.done():
                queue.popleft()
            elif self._fits(head.nbytes):
                queue.popleft()
                self._grant(head)
            else:
                self._grant_small(queue)
                return False
        return True

    def _grant_small(self, queue: deque[_Waiter]) -> None:
        for waiter in queue:
            small = waiter.share <= self.small_bytes
            if small and not waiter.granted.done() and self._fits(waiter.nbytes):
                self._grant(waiter)

    def _grant(self, waiter: _Waiter) -> None:
        self._add(waiter.nbytes)
        waiter.granted.set_result(None)

    @staticmethod
    def _live(queue: deque[_Waiter]) -> int:
        """Waiters still waiting (a cancelled one stays queued until it reaches the head)."""
        if not queue:
            return 0
        return sum(1 for waiter in queue if not waiter.granted.done())

    def _overloaded(self, nbytes: int) -> Overloaded:
        return Overloaded(
            f"the service is busy: {self.in_use} bytes of requests are in flight and this "
            f"request needs {nbytes} more than the {self.capacity} it may hold; retry shortly"
        )


class Reservation:
    """A request's share of the budget: entered, it holds ``nbytes``; ``extend`` adds to it and
    leaving gives all of it back, whether the block ends well or not.

    Entered while another reservation of the same budget is current in this task (a
    transport's, around the request), it is part of that one: its bytes grow the request's
    share, ahead of admissions, rather than asking again as a new request would.
    """

    __slots__ = ("_parent", "_pending", "_task", "_token", "budget", "nbytes")

    def __init__(self, budget: InflightBudget, nbytes: int) -> None:
        self.budget = budget
        self.nbytes = 0
        self._pending = nbytes
        self._parent: Reservation | None = None
        self._token: Token[Reservation | None] | None = None
        self._task: asyncio.Task[object] | None = None

    async def __aenter__(self) -> "Reservation":
        current = _current_reservation.get()
        self._task = asyncio.current_task()
        if current is not None and current.budget is self.budget and current._task is self._task:
            self._parent = current
        else:
            self._token = _current_reservation.set(self)
        await self.extend(self._pending)
        return self

    async def __aexit__(
        self,
        exception_type: type[BaseException] | None,
        exception: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.shrink(self.nbytes)
        if self._token is not None:
            _current_reservation.reset(self._token)

    async def extend(self, nbytes: int) -> None:
        """Hold ``nbytes`` more (the request's first bytes wait like an admission, later ones
        ahead of admissions): before reading a body, decoding it or running the model on it."""
        if nbytes < 0:
            raise ValueError("cannot reserve a negative number of bytes")
        if nbytes == 0:
            return
        if self._parent is not None:
            await self._parent.extend(nbytes)
        elif self.nbytes == 0:
            await self.budget.acquire(nbytes)
            self.budget.holders += 1
        else:
            await self.budget.acquire_more(nbytes, self.nbytes)
        self.nbytes += nbytes

    def shrink(self, nbytes: int) -> None:
        """Give back ``nbytes`` of this share early, once what they paid for is freed."""
        if nbytes < 0 or nbytes > self.nbytes:
            raise ValueError(f"cannot give back {nbytes} bytes of a {self.nbytes}-byte share")
        if nbytes == 0:
            return
        self.nbytes -= nbytes
        if self._parent is not None:
            self._parent.shrink(nbytes)
            return
        if self.nbytes == 0:
            self.budget.holders -= 1
        self.budget.release(nbytes)


# The reservation of the request this context serves, if any (see Reservation).
_current_reservation: ContextVar[Reservation | None] = ContextVar(
    "inflight_reservation", default=None
)
