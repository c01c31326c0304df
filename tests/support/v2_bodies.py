"""V2 REST request bodies for tests."""

import numpy as np
import orjson


def binary_infer_body(count: int) -> tuple[bytes, dict[str, str]]:
    """A V2 infer body of ``count`` blank UINT8 [28, 28] images as binary data, and its header."""
    size = count * 784
    tensor = {"name": "image", "shape": [count, 28, 28], "datatype": "UINT8"}
    header = orjson.dumps({"inputs": [tensor | {"parameters": {"binary_data_size": size}}]})
    body = header + np.zeros(size, dtype=np.uint8).tobytes()
    return body, {"Inference-Header-Content-Length": str(len(header))}
