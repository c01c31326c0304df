"""Where a request's CPU work runs: inline when small, else in a thread from a bounded pool."""

from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread

Result = TypeVar("Result")


async def run_request_work(
    limiter: anyio.CapacityLimiter,
    function: Callable[..., Result],
    *arguments: object,
    inline: bool,
) -> Result:
    """Run ``function`` for a request without stalling the event loop on large inputs.

    Small work runs inline: the hop to a thread costs more than decoding a 28x28 PNG. Large work
    (big images, big tensor bodies) runs in a thread, at most ``limiter``'s tokens at once
    (``MNIST_HEAVY_WORK_THREADS``), so a burst of large uploads queues instead of holding
    hundreds of MB each at once.
    """
    if inline:
        return function(*arguments)
    return await anyio.to_thread.run_sync(function, *arguments, limiter=limiter)
