"""SIGHUP reloads the repository from disk, as Triton, nginx and most daemons do.

Only where the app runs in the main thread of its process (``python -m service`` with one
worker, or each worker of several): an app driven from another thread (a test client) cannot
own the process's signals. With several workers, uvicorn's main process takes SIGHUP itself and
replaces the workers one at a time; each new worker loads the repository in its lifespan.
"""

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Iterator

import anyio

from service.inference.dataplane import DataPlane
from service.inference.model_control import join_the_workers, reload_everything

logger = logging.getLogger("service.repository")


@contextlib.contextmanager
def reload_on_sighup(dataplane: DataPlane) -> Iterator[None]:
    """While the block runs, SIGHUP reloads every model (off the event loop, one at a time)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGHUP"):
        yield
        return
    loop = asyncio.get_running_loop()
    reloads: set[asyncio.Task] = set()
    lock = asyncio.Lock()

    async def reload() -> None:
        async with lock:
            logger.info("SIGHUP: reloading the model repository from disk")
            await anyio.to_thread.run_sync(reload_everything, dataplane)

    def schedule() -> None:
        task = loop.create_task(reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, schedule)
    states = join_the_workers(dataplane)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
        if states is not None:
            states.withdraw()
