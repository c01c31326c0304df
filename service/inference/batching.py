"""Every model call of the service, counted; with dynamic batching, shared by concurrent requests.

``ModelCalls`` runs a classifier for the named outputs and records the images of each
onnxruntime call (``mnist_inference_batch_size``) and what it took (Triton's statistics).
``AdaptiveBatcher`` is the same, except that calls made on the event loop may be shared,
Triton-style: the first request for a model call (a model version and the outputs asked for)
leads it and yields an event-loop turn, in which the requests the loop has in hand reach their
own model call and join; it yields again while the last turn brought someone (at most
``MAX_TURNS`` turns), then runs the call for all of them and hands each its rows.
Nobody waits for a timer.

The batcher decides alone or together from what it sees, and nothing else knows it exists:
the transports and the dataplane make the same call with batching on or off, and no server
hands it hints. A request that finds nobody joining after one turn runs then: a lone request
pays one loop turn. gRPC calls reach the model through the same call as REST requests, but
grpc.aio hands concurrent calls to the loop on different turns, so they meet here far less
often than REST requests, which uvicorn hands over together. An image's answer does not
depend on its company (the shipped fp32 model gives bitwise the same rows in calls of 1 to 512
images); a dynamically quantised model is never batched (``ModelCard.batch_independent``).
"""

import asyncio
from collections.abc import Sequence
from time import perf_counter_ns

import numpy as np

from service.inference.classifier import Classifier
from service.inference.metrics import Metrics
from service.inference.statistics import RequestTiming, Statistics

OutputNames = tuple[str, ...]
# A request's timing, when it keeps one (Triton's statistics).
Timing = RequestTiming | None
# The most event-loop turns a call waits for company: a bound on the delay it adds.
MAX_TURNS = 4


class ModelCalls:
    """Model calls one at a time, each counted with its images and timed.

    A request may pass its ``RequestTiming``: the call's start and end are written into it
    (into every request's that shares the call), for its queue and compute times."""

    def __init__(self, metrics: Metrics, statistics: Statistics | None = None) -> None:
        self.metrics = metrics
        self.statistics = statistics or Statistics()

    def run_now(
        self,
        classifier: Classifier,
        names: OutputNames,
        images: np.ndarray,
        timings: Sequence[RequestTiming] = (),
        joining_ns: int = 0,
    ) -> list[np.ndarray]:
        """One onnxruntime call for ``images``, here and now (also from a worker thread);
        ``joining_ns``: what gathering the images of several requests took."""
        card = classifier.card
        self.metrics.observe_model_call(card.name, card.version, len(images))
        started = perf_counter_ns()
        arrays = classifier.run(names, images)
        ended = perf_counter_ns()
        for timing in timings:
            timing.call_started, timing.call_ended = started, ended
            timing.batch_size = len(images)
        # Each request's rows are views of the call's outputs: handing them out copies nothing.
        self.statistics.of(card).record_execution(len(images), joining_ns, ended - started, 0)
        return arrays

    async def run(
        self, classifier: Classifier, names: OutputNames, images: np.ndarray, timing: Timing = None
    ) -> list[np.ndarray]:
        """The named outputs for ``images``, from the event loop."""
        return self.run_now(classifier, names, images, _own(timing))


class ModelCall:
    """The images of every request in one call, and the futures of the requests that joined."""

    def __init__(
        self,
        classifier: Classifier,
        names: OutputNames,
        images: np.ndarray,
        timing: RequestTiming | None,
    ) -> None:
        self.classifier = classifier
        self.names = names
        self.images = [images]
        self.timings = list(_own(timing))
        self.followers: list[asyncio.Future] = []

    def join(self, images: np.ndarray, timing: RequestTiming | None) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.images.append(images)
        self.timings.extend(_own(timing))
        self.followers.append(future)
        return future

    def run(self, calls: ModelCalls) -> list[np.ndarray]:
        """One model call; each follower gets its rows, or the call's error. The leader's rows
        (or the error) are returned (raised) here."""
        joining = perf_counter_ns()
        batch = self.images[0] if len(self.images) == 1 else np.concatenate(self.images)
        joined = perf_counter_ns() - joining
        try:
            arrays = calls.run_now(self.classifier, self.names, batch, self.timings, joined)
        except Exception as error:
            for future in self.followers:
                if not future.cancelled():
                    future.set_exception(error)
            raise
        slices = _row_slices([len(images) for images in self.images])
        for future, rows in zip(self.followers, slices[1:], strict=True):
            if not future.cancelled():
                future.set_result([array[rows] for array in arrays])
        return [array[slices[0]] for array in arrays]


async def next_turn() -> None:
    """Let the event loop run whatever else is ready, once."""
    await asyncio.sleep(0)


class AdaptiveBatcher(ModelCalls):
    """Model calls open for joining during the current loop turn, one per model version and
    output names. A classifier is alive while its call is open, so its id is not reused then:
    versions served side by side, and a model swapped in by a reload, never share a call."""

    def __init__(self, metrics: Metrics, statistics: Statistics | None = None) -> None:
        super().__init__(metrics, statistics)
        self._open: dict[tuple[int, OutputNames], ModelCall] = {}

    async def run(
        self, classifier: Classifier, names: OutputNames, images: np.ndarray, timing: Timing = None
    ) -> list[np.ndarray]:
        """The named outputs for ``images``, from a call shared with concurrent requests."""
        if not classifier.card.batch_independent:
            return self.run_now(classifier, names, images, _own(timing))
        key = (id(classifier), names)
        call = self._open.get(key)
        if call is not None:
            return await call.join(images, timing)
        call = self._open[key] = ModelCall(classifier, names, images, timing)
        try:
            for _ in range(MAX_TURNS):
                joined = len(call.followers)
                await next_turn()
                if len(call.followers) == joined:
                    break
        finally:
            # Even when the leader is cancelled, the requests that joined it get their answers.
            del self._open[key]
            arrays = call.run(self)
        return arrays


def model_calls(
    metrics: Metrics, dynamic_batching: bool, statistics: Statistics | None = None
) -> ModelCalls:
    """The service's model calls: batched when ``dynamic_batching`` is on."""
    calls = AdaptiveBatcher if dynamic_batching else ModelCalls
    return calls(metrics, statistics)


def _own(timing: RequestTiming | None) -> tuple[RequestTiming, ...]:
    """The timings of a call made for one request."""
    return () if timing is None else (timing,)


def _row_slices(sizes: Sequence[int]) -> list[slice]:
    slices, start = [], 0
    for size in sizes:
        slices.append(slice(start, start + size))
        start += size
    return slices
