"""A request message read within its time bounds (``service.grpc.admission``): by its deadline
(``MNIST_GRPC_RECEIVE_SECONDS`` from the call's start), and past ``PROMPT_SECONDS`` only while
the messages that are that slow hold at most half of the in-flight budget, so that a few
stalled clients cannot hold all of it until their deadline.

One timer watches a message, in the call's own task: no task or wait of its own for a message
that is already there.
"""

import asyncio
from typing import Any

import grpc

from service.inference.errors import ServiceError

# A message not in after this long is slow: slow ones may hold at most half the budget.
PROMPT_SECONDS = 1.0


class ReceiveTimeout(ServiceError, status_code=408, reason="receive_timeout"):
    """The request message did not arrive in time."""


class SlowMessages:
    """The budget shares of the messages still arriving after ``PROMPT_SECONDS``, at most
    ``limit`` bytes, for one server whose messages have ``receive_seconds`` to arrive."""

    __slots__ = ("held", "limit", "receive_seconds")

    def __init__(self, limit: int, receive_seconds: float) -> None:
        self.limit = limit
        self.receive_seconds = receive_seconds
        self.held = 0


async def read_message(
    context: grpc.aio.ServicerContext, deadline: float, share: int, slow: SlowMessages
) -> Any | None:
    """The call's next message, or None when the call ended without one; ``ReceiveTimeout``
    if it does not arrive in time. ``share``: what the call holds of the budget meanwhile."""
    arrival = _Arrival(slow, share, deadline)
    try:
        async with asyncio.timeout(None) as arrival.timeout:
            arrival.start()
            message = await context.read()
    except TimeoutError:
        raise ReceiveTimeout(arrival.refusal) from None
    finally:
        arrival.stop()
    return None if message is grpc.aio.EOF else message


class _Arrival:
    """The timer of one message: at ``PROMPT_SECONDS`` the message turns slow and goes on only
    while there is room among the slow ones, then it has until its deadline."""

    __slots__ = ("deadline", "refusal", "share", "slow", "slow_counted", "timeout", "timer")

    def __init__(self, slow: SlowMessages, share: int, deadline: float) -> None:
        self.slow = slow
        self.share = share
        self.deadline = deadline
        self.slow_counted = False
        self.refusal = (
            f"the request message did not arrive within {slow.receive_seconds:g} s "
            "(MNIST_GRPC_RECEIVE_SECONDS)"
        )
        self.timeout: asyncio.Timeout | None = None
        self.timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Watch from now: the prompt, or the deadline if it comes first."""
        loop = asyncio.get_running_loop()
        prompt = loop.time() + PROMPT_SECONDS
        if prompt < self.deadline:
            self.timer = loop.call_at(prompt, self._turned_slow)
        else:
            self.timeout.reschedule(self.deadline)

    def _turned_slow(self) -> None:
        slow = self.slow
        if slow.held + self.share > slow.limit:
            self.refusal = (
                f"the request message did not arrive within {PROMPT_SECONDS:g} s while other "
                "slow messages hold half of the memory for requests in flight"
            )
            self.timeout.reschedule(asyncio.get_running_loop().time())
            return
        slow.held += self.share
        self.slow_counted = True
        self.timeout.reschedule(self.deadline)

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.slow_counted:
            self.slow.held -= self.share
            self.slow_counted = False
