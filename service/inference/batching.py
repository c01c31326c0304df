"""Every model call of the service, counted; with dynamic batching, shared by concurrent requests.

``ModelCalls`` runs a classifier for the named outputs and records the images of each
onnxruntime call (``mnist_inference_batch_size``). ``AdaptiveBatcher`` is the same, except that
calls made on the event loop may be shared, Triton-style: the first request for a model call (a
model version and the outputs asked for) leads it and yields an event-loop turn, in which the
requests the loop has in hand reach their own model call and join; it yields again while the
last turn brought someone (at most ``MAX_TURNS`` turns), then runs the call for all of them and
hands each its rows. Nobody waits for a timer.

The batcher decides alone or together from what it sees, not from hints handed down by the
transports: the requests in progress that the transports' observers count in ``Metrics`` (REST
and gRPC alike). A request that is the only one in progress runs at once; when nobody counts
(the dataplane driven directly) it waits for company as any other. An image's answer does not
depend on its company (the shipped fp32 model gives bitwise the same rows in calls of 1 to 512
images); a dynamically quantised model is never batched
(``ModelCard.batch_independent``).
"""

import asyncio
from collections.abc import Sequence

import numpy as np

from service.inference.classifier import Classifier
from service.inference.metrics import Metrics

OutputNames = tuple[str, ...]
# The most event-loop turns a call waits for company: a bound on the delay it adds.
MAX_TURNS = 4


class ModelCalls:
    """Model calls one at a time, each counted with its images."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def run_now(
        self, classifier: Classifier, names: OutputNames, images: np.ndarray
    ) -> list[np.ndarray]:
        """One onnxruntime call for ``images``, here and now (also from a worker thread)."""
        card = classifier.card
        self.metrics.observe_model_call(card.name, card.version, len(images))
        return classifier.run(names, images)

    async def run(
        self, classifier: Classifier, names: OutputNames, images: np.ndarray
    ) -> list[np.ndarray]:
        """The named outputs for ``images``, from the event loop."""
        return self.run_now(classifier, names, images)


class ModelCall:
    """The images of every request in one call, and the futures of the requests that joined."""

    def __init__(self, classifier: Classifier, names: OutputNames, images: np.ndarray) -> None:
        self.classifier = classifier
        self.names = names
        self.images = [images]
        self.followers: list[asyncio.Future] = []

    def join(self, images: np.ndarray) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.images.append(images)
        self.followers.append(future)
        return future

    def run(self, calls: ModelCalls) -> list[np.ndarray]:
        """One model call; each follower gets its rows, or the call's error. The leader's rows
        (or the error) are returned (raised) here."""
        batch = self.images[0] if len(self.images) == 1 else np.concatenate(self.images)
        try:
            arrays = calls.run_now(self.classifier, self.names, batch)
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

    def __init__(self, metrics: Metrics) -> None:
        super().__init__(metrics)
        self._open: dict[tuple[int, OutputNames], ModelCall] = {}

    async def run(
        self, classifier: Classifier, names: OutputNames, images: np.ndarray
    ) -> list[np.ndarray]:
        """The named outputs for ``images``, from a call shared with concurrent requests."""
        if not classifier.card.batch_independent:
            return self.run_now(classifier, names, images)
        key = (id(classifier), names)
        call = self._open.get(key)
        if call is not None:
            return await call.join(images)
        if self.metrics.requests_in_progress == 1:  # alone: nobody to wait for
            return self.run_now(classifier, names, images)
        call = self._open[key] = ModelCall(classifier, names, images)
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


def model_calls(metrics: Metrics, dynamic_batching: bool) -> ModelCalls:
    """The service's model calls: batched when ``dynamic_batching`` is on."""
    return AdaptiveBatcher(metrics) if dynamic_batching else ModelCalls(metrics)


def _row_slices(sizes: Sequence[int]) -> list[slice]:
    slices, start = [], 0
    for size in sizes:
        slices.append(slice(start, start + size))
        start += size
    return slices
