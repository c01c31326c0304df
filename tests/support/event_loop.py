"""Running a coroutine to completion from a test, whatever the calling thread already runs."""

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

Result = TypeVar("Result")


def run_on_own_thread(coroutine: Coroutine[Any, Any, Result]) -> Result:
    """``asyncio.run`` on a thread of its own: Playwright's sync API (the browser tests) keeps a
    loop running in the main thread, where ``asyncio.run`` would refuse to start. Exceptions
    raised by the coroutine are raised here."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
