"""The in-flight memory budget: how many bytes of requests one process reads, decodes and infers
at once, over REST and gRPC together (``MNIST_MAX_INFLIGHT_BYTES``).

Every limit per request (body size, pixels, batch size) bounds one request; this bounds their sum,
which is what a pod's memory limit is about. A transport reserves what a request will hold before
it holds it (the declared body size before reading it, the decoded size before decoding) and
gives it back when the answer is written::

    async with dataplane.inflight.reserve(len(body)) as reservation:
        ...
        await reservation.extend(decoded_bytes)

A request that does not fit waits its turn, first come first served, for at most
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
from dataclasses import dataclass, field
from types import TracebackType

from service.inference.errors import Overloaded, PayloadTooLarge


@dataclass(slots=True)
class _Waiter:
    nbytes: int
    granted: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class InflightBudget:
    """Bytes of work in flight, at most ``capacity``; ``reserve`` takes a share for a request."""

    def __init__(self, capacity: int, wait_seconds: float) -> None:
        if capacity < 1:
            raise ValueError("an in-flight budget must hold at least one byte")
        if wait_seconds < 0:
            raise ValueError("the wait for an in-flight budget cannot be negative")
        self.capacity = capacity
        self.wait_seconds = wait_seconds
        self.in_use = 0
        self._waiters: deque[_Waiter] = deque()

    @property
    def waiting(self) -> int:
        """Requests waiting for their share now."""
        return sum(1 for waiter in self._waiters if not waiter.granted.done())

    def reserve(self, nbytes: int) -> "Reservation":
        """An async context manager holding ``nbytes`` of the budget while its block runs."""
        return Reservation(self, nbytes)

    async def acquire(self, nbytes: int, held: int = 0) -> None:
        """Take ``nbytes`` (a request already holding ``held`` more): at once when they fit and
        nobody waits before, else after a wait of at most ``wait_seconds``, else ``Overloaded``."""
        if nbytes < 0:
            raise ValueError("cannot reserve a negative number of bytes")
        if held + nbytes > self.capacity:
            raise PayloadTooLarge(
                f"this request needs {held + nbytes} bytes of memory in flight; the service "
                f"holds at most {self.capacity} (MNIST_MAX_INFLIGHT_BYTES)",
                reason="over_inflight_budget",
            )
        if not self._waiters and self.in_use + nbytes <= self.capacity:
            self.in_use += nbytes
            return
        await self._wait(nbytes)

    async def _wait(self, nbytes: int) -> None:
        waiter = _Waiter(nbytes)
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.wait_seconds):
                await waiter.granted
        except TimeoutError:
            if waiter.granted.done() and not waiter.granted.cancelled():
                return  # Granted in the loop turn the wait ran out: keep it.
            raise self._overloaded(nbytes) from None
        except BaseException:
            if waiter.granted.done() and not waiter.granted.cancelled():
                # Granted in the same loop turn as the cancellation: give it back.
                self.release(nbytes)
            raise
        finally:
            if not waiter.granted.done():
                waiter.granted.cancel()
            self._grant_waiters()

    def release(self, nbytes: int) -> None:
        """Give back ``nbytes``; the requests waiting first take them, in order."""
        if nbytes < 0 or nbytes > self.in_use:
            raise ValueError(f"cannot release {nbytes} bytes; {self.in_use} are in use")
        self.in_use -= nbytes
        self._grant_waiters()

    def _grant_waiters(self) -> None:
        """First come first served: a large request at the head is not overtaken by small ones."""
        while self._waiters:
            head = self._waiters[0]
            if head.granted.done():
                self._waiters.popleft()
            elif self.in_use + head.nbytes <= self.capacity:
                self._waiters.popleft()
                self.in_use += head.nbytes
                head.granted.set_result(None)
            else:
                return

    def _overloaded(self, nbytes: int) -> Overloaded:
        return Overloaded(
            f"the service is busy: {self.in_use} bytes of requests are in flight and this "
            f"request needs {nbytes} more than the {self.capacity} it may hold; retry shortly"
        )


class Reservation:
    """A request's share of the budget: entered, it holds ``nbytes``; ``extend`` adds to it and
    leaving gives all of it back, whether the block ends well or not."""

    __slots__ = ("_pending", "budget", "nbytes")

    def __init__(self, budget: InflightBudget, nbytes: int) -> None:
        self.budget = budget
        self.nbytes = 0
        self._pending = nbytes

    async def __aenter__(self) -> "Reservation":
        await self.budget.acquire(self._pending)
        self.nbytes = self._pending
        return self

    async def __aexit__(
        self,
        exception_type: type[BaseException] | None,
        exception: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        held, self.nbytes = self.nbytes, 0
        self.budget.release(held)

    async def extend(self, nbytes: int) -> None:
        """Hold ``nbytes`` more (waiting like ``reserve``): before decoding or growing a body."""
        await self.budget.acquire(nbytes, held=self.nbytes)
        self.nbytes += nbytes

    def shrink(self, nbytes: int) -> None:
        """Give back ``nbytes`` of this share early, once what they paid for is freed."""
        if nbytes < 0 or nbytes > self.nbytes:
            raise ValueError(f"cannot give back {nbytes} bytes of a {self.nbytes}-byte share")
        self.nbytes -= nbytes
        self.budget.release(nbytes)
