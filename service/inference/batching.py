"""Triton-style dynamic batching for ``POST /predict`` (off unless ``MNIST_DYNAMIC_BATCHING``)."""

import asyncio

import numpy as np

from service.inference.classifier import Classifier


class DynamicBatcher:
    """Images of requests that reach the same model version in the same event-loop turn share
    one call.

    Triton-style dynamic batching with a queue delay of one loop turn: the first request of a
    turn schedules the call, the others of that turn join it. onnxruntime costs ~40 µs for one
    image and ~10 µs an image in a batch, so under concurrent load a request costs less and no
    request waits for a timer (benchmarks/levers.py, "dynamic batching"). Each request names
    the classifier it was routed to, so versions served side by side, and a model swapped in
    by a load, never share a call.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Classifier, np.ndarray, asyncio.Future]] = []

    def predict(self, classifier: Classifier, images: np.ndarray) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self._pending:
            loop.call_soon(self._run)
        self._pending.append((classifier, images, future))
        return future

    def _run(self) -> None:
        pending, self._pending = self._pending, []
        # Objects are alive for the whole turn, so their ids cannot be reused within it.
        groups: dict[int, list[tuple[Classifier, np.ndarray, asyncio.Future]]] = {}
        for entry in pending:
            groups.setdefault(id(entry[0]), []).append(entry)
        for group in groups.values():
            _run_group(group)


def _run_group(group: list[tuple[Classifier, np.ndarray, asyncio.Future]]) -> None:
    classifier = group[0][0]
    arrays = [images for _, images, _ in group]
    try:
        probabilities = classifier.predict(
            arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
        )
    except Exception as error:
        for _, _, future in group:
            if not future.cancelled():
                future.set_exception(error)
        return
    start = 0
    for _, images, future in group:
        if not future.cancelled():
            future.set_result(probabilities[start : start + len(images)])
        start += len(images)
