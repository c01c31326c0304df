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
# A model call on uint8 [N, 28, 28] holds about 8 bytes an input element (the float32 input
# and the activations of the hidden layers); 9 leaves room for the outputs.
INFERENCE_BYTES_PER_ELEMENT = 9


def json_parse_bytes(document: bytes) -> int:
    """Most memory ``orjson.loads(document)`` may take, counted in C loops (``bytes.count``)
    without parsing: ``[[],[],...]`` is charged 37 times its size, a flat list of digits 16."""
    return (
        JSON_BYTES_PER_BYTE * len(document)
        + JSON_BYTES_PER_LIST * document.count(b"[")
        + JSON_BYTES_PER_OBJECT * document.count(b"{")
    )


def inference_bytes(shapes: Iterable[list[int]], max_elements: int) -> int:
    """Most memory a model call on inputs of these shapes takes, the elements capped at
    ``max_elements`` (larger requests are refused before their model call)."""
    elements = sum(math.prod(max(size, 0) for size in shape) for shape in shapes)
    return INFERENCE_BYTES_PER_ELEMENT * min(elements, max_elements)
