"""The garbage collector tuned for a server whose start-up objects live as long as it does."""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

# Container allocations between two collections of the youngest generation (CPython: 700).
YOUNG_COLLECTION_ALLOCATIONS = 5_000


@asynccontextmanager
async def startup_heap_frozen(dataplane: object) -> AsyncIterator[None]:
    """While the app serves: everything alive once its models have loaded is left out of
    garbage collection (``gc.freeze``), and the youngest generation is collected every 5,000
    allocations rather than 700; both are undone when the app stops.

    The imports, routes, schemas and models are tens of thousands of tracked objects, and a full
    collection walks all of them. Under load, request objects in flight reach the oldest
    generation often enough to set one off several times a second, which set the p99
    (``python -m benchmarks.levers --route infer``, "garbage collector as CPython's"). Nothing
    is kept that would have been freed: requests' own cyclic garbage is young, and still
    collected.
    """
    previous = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_ALLOCATIONS, *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()
