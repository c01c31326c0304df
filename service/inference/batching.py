"""Triton-style dynamic batching for ``POST /predict`` (off unless ``MNIST_DYNAMIC_BATCHING``)."""

import asyncio

import numpy as np

from service.inference.classifier import Classifier


class DynamicBatcher:
    """Images of requests that reach the model in the same event-loop turn share one call.

    Triton-style dynamic batching with a queue delay of one loop turn: the first request of a
    turn schedules the call, the others of that turn join it. onnxruntime costs ~40 µs for one
    image and ~10 µs an image in a batch, so under concurrent load a request costs less and no
    request waits for a timer (benchmarks/levers.py, "dynamic batching").
    """

    def __init__(self, classifier: Classifier) -> None:
        self.classifier = classifier
        self._pending: list[tuple[np.ndarray, asyncio.Future]] = []

    def predict(self, images: np.ndarray) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self._pending:
            loop.call_soon(self._run)
        self._pending.append((images, future))
        return future

    def _run(self) -> None:
        pending, self._pending = self._pending, []
        arrays = [images for images, _ in pending]
        try:
            probabilities = self.classifier.predict(
                arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
            )
        except Exception as error:
            for _, future in pending:
                if not future.cancelled():
                    future.set_exception(error)
            return
        start = 0
        for images, future in pending:
            if not future.cancelled():
                future.set_result(probabilities[start : start + len(images)])
            start += len(images)
