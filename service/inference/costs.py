"""What handling a request body will hold in memory, known before the work that holds it, so
that it is charged to the in-flight budget (``service.inference.budget``) first.

Each figure is an upper bound measured on the service's own work (README "Limits and
security"): over-charging refuses a request a pod could have served; under-charging lets one
that it cannot serve through.
"""

import math
from collections.abc import Iterable

# orjson keeps a parsed document of 16 bytes a value before it builds the Python objects, at 8
# bytes a reference more; no scalar token costs more than 15 bytes per byte of JSON (a 2-byte
# string), so 16 per byte bounds them all. Containers cost more than their 2 or 3 bytes: a list
# 56 bytes, a dict with its first entries about 230.
JSON_BYTES_PER_BYTE = 16
JSON_BYTES_PER_LIST = 64
JSON_BYTES_PER_OBJECT = 240
# A model call on uint8 [N, 28, 28] holds up to 20 bytes an input element it runs at once: the
# float32 input, every hidden layer's activations (the digit_score head reads them all) and the
# outputs (``python -m benchmarks.call_memory``, for the shipped fp32 and int8 models).
INFERENCE_BYTES_PER_ELEMENT = 20
# A call run in slices holds two slices' worth: onnxruntime's arena plans a slice's memory as one
# block on its second run, beside the blocks of the first run, which it keeps.
SLICES_HELD = 2


def json_parse_bytes(document: bytes) -> int:
    """Most memory ``orjson.loads(document)`` may take, counted in C loops (``bytes.count``)
    without parsing: ``[[],[],...]`` is charged 37 times its size, a flat list of digits 16."""
    return (
        JSON_BYTES_PER_BYTE * len(document)
        + JSON_BYTES_PER_LIST * document.count(b"[")
        + JSON_BYTES_PER_OBJECT * document.count(b"{")
    )


def inference_bytes(
    shapes: Iterable[list[int]], max_elements: int, slice_elements: int | None = None
) -> int:
    """Most memory a model call on inputs of these shapes takes, the elements capped at
    ``max_elements`` (larger requests are refused before their model call); a model that runs
    large batches in slices of ``slice_elements`` (``Classifier.slice_elements``) holds at most
    ``SLICES_HELD`` of them, one that runs them whole (None) the whole batch."""
    elements = 0
    for shape in shapes:  # A loop of C calls: this runs for every request.
        if min(shape, default=0) >= 0:
            elements += math.prod(shape)
    elements = min(elements, max_elements)
    if slice_elements is not None:
        elements = min(elements, SLICES_HELD * slice_elements)
    return INFERENCE_BYTES_PER_ELEMENT * elements
