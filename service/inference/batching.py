"""Triton-style dynamic batching: concurrent requests share one model call.

On unless ``MNIST_DYNAMIC_BATCHING=false``, for ``POST /predict`` and V2 inference of small
bodies (REST and gRPC). Nobody waits for a timer. The first request for a model call (a model
version and the outputs asked for) leads it: it yields an event-loop turn, in which the
requests the loop has in hand reach their own model call and join; it yields again while the
last turn brought someone (at most ``MAX_TURNS`` turns), then runs the call for all of them and
hands each its rows. A request that the transport knows to be alone (no other request in
progress) runs at once and waits for nothing. An image's answer does not depend on its company
(the shipped fp32 model gives bitwise the same rows in calls of 1 to 512 images); a
dynamically quantised model is never batched (``ModelCard.batch_independent``).

V2 infer of one JSON image at 8 connections: one turn gave calls of 3.0 requests on average
and 0.79x the raw-ASGI floor's requests/s; waiting while requests keep coming, 0.96x
(``python -m benchmarks.http_predict --routes infer``).
"""

import asyncio
from collections.abc import Sequence
from time import perf_counter_ns

import numpy as np

from service.inference.classifier import Classifier
from service.inference.statistics import RequestTiming

OutputNames = tuple[str, ...]
# The most event-loop turns a call waits for company: a bound on the delay it adds.
MAX_TURNS = 4


class ModelCall:
    """The images of every request in one call, and the futures of the requests that joined."""

    def __init__(
        self, classifier: Classifier, names: OutputNames, images: np.ndarray, timing: RequestTiming
    ) -> None:
        self.classifier = classifier
        self.names = names
        self.images = [images]
        self.timings = [timing]
        self.followers: list[asyncio.Future] = []

    def join(self, images: np.ndarray, timing: RequestTiming) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.images.append(images)
        self.timings.append(timing)
        self.followers.append(future)
        return future

    def run(self) -> list[np.ndarray]:
        """One model call; each follower gets its rows, or the call's error. The leader's rows
        (or the error) are returned (raised) here. Each step is timed for the statistics."""
        joining = perf_counter_ns()
        batch = self.images[0] if len(self.images) == 1 else np.concatenate(self.images)
        started = perf_counter_ns()
        try:
            arrays = self.classifier.run(self.names, batch)
        except Exception as error:
            for future in self.followers:
                if not future.cancelled():
                    future.set_exception(error)
            raise
        ended = perf_counter_ns()
        slices = _row_slices([len(images) for images in self.images])
        for future, rows in zip(self.followers, slices[1:], strict=True):
            if not future.cancelled():
                future.set_result([array[rows] for array in arrays])
        leader_rows = [array[slices[0]] for array in arrays]
        for timing in self.timings:
            timing.call_started, timing.call_ended = started, ended
        self.timings[0].statistics.record_execution(
            len(batch), started - joining, ended - started, perf_counter_ns() - ended
        )
        return leader_rows


class DynamicBatcher:
    """Model calls open for joining during the current loop turn, one per model version and
    output names. A classifier is alive while its call is open, so its id is not reused then:
    versions served side by side, and a model swapped in by a reload, never share a call."""

    def __init__(self) -> None:
        self._open: dict[tuple[int, OutputNames], ModelCall] = {}

    async def run(
        self, classifier: Classifier, names: OutputNames, images: np.ndarray, timing: RequestTiming
    ) -> list[np.ndarray]:
        """The named outputs for ``images``, from a call shared with concurrent requests;
        ``timing`` gets the call's start and end."""
        key = (id(classifier), names)
        call = self._open.get(key)
        if call is not None:
            return await call.join(images, timing)
        call = self._open[key] = ModelCall(classifier, names, images, timing)
        try:
            for _ in range(MAX_TURNS):
                joined = len(call.followers)
                await asyncio.sleep(0)
                if len(call.followers) == joined:
                    break
        finally:
            # Even when the leader is cancelled, the requests that joined it get their answers.
            del self._open[key]
            arrays = call.run()
        return arrays


def _row_slices(sizes: Sequence[int]) -> list[slice]:
    slices, start = [], 0
    for size in sizes:
        slices.append(slice(start, start + size))
        start += size
    return slices
