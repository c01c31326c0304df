"""What the benchmarks measure with: the model to load, MNIST digits and the request bodies."""

import io
import itertools
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent

SHIPPED_MODEL = ROOT / "models" / "mnist_mlp.onnx"

DEFAULT_MNIST_DIR = ROOT.parent / "shared" / "data" / "mnist"

STAND_IN_HIDDEN = (512, 128)


def benchmark_model(requested: Path | None, workdir: Path) -> Path:
    """The model to measure: the one asked for, the shipped one, else a stand-in of its size."""
    if requested is not None:
        return requested.resolve()
    if SHIPPED_MODEL.exists():
        return SHIPPED_MODEL
    from tests.support.models import write_model

    return write_model(workdir, model=_stand_in_mlp())


def _stand_in_mlp():
    """The shipped signature around the cost of the real model: two relu layers, then softmax."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    sizes = (784, *STAND_IN_HIDDEN, 10)
    initializers = [numpy_helper.from_array(np.array([-1, 784], np.int64), "flat_shape")]
    nodes = [
        helper.make_node("Cast", ["image"], ["as_float"], to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["as_float", "flat_shape"], ["layer0"]),
    ]
    for index, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        weights = rng.normal(0.0, 0.05 / 255.0, (fan_in, fan_out)).astype(np.float32)
        initializers.append(numpy_helper.from_array(weights, f"w{index}"))
        nodes.append(helper.make_node("MatMul", [f"layer{index}", f"w{index}"], [f"mm{index}"]))
        if index == len(sizes) - 2:
            nodes.append(helper.make_node("Softmax", [f"mm{index}"], ["probabilities"], axis=1))
        else:
            nodes.append(helper.make_node("Relu", [f"mm{index}"], [f"layer{index + 1}"]))
    graph = helper.make_graph(
        nodes,
        "stand_in_mlp",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["batch", 28, 28])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def mnist_dir() -> Path:
    """``MNIST_DIR`` if set, else the shared data folder beside the checkout."""
    return Path(os.environ.get("MNIST_DIR") or DEFAULT_MNIST_DIR).resolve()


def mnist_test_set(count: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The MNIST test images [N, 28, 28] uint8 and labels; a clear exit when they are missing."""
    from tests.support.mnist import load_test_set

    try:
        images, labels = load_test_set(mnist_dir())
    except FileNotFoundError as error:
        raise SystemExit(f"MNIST test files not found ({error}); set MNIST_DIR") from None
    return images[:count], labels[:count]


def png_bytes(pixels: np.ndarray) -> bytes:
    """A lossless PNG of one 28x28 image, as a client uploads it."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def multipart_body(field: str, files: Sequence[bytes]) -> tuple[bytes, str]:
    """A multipart/form-data body with each PNG as a file part; returns body and content type."""
    boundary = "mnistbenchmarkboundary7d1f"
    parts = [
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="{index}.png"\r\nContent-Type: image/png\r\n\r\n'
        ).encode()
        + data
        + b"\r\n"
        for index, data in enumerate(files)
    ]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def one_digit_request() -> tuple[bytes, str]:
    """The first MNIST test digit as a 28x28 PNG in a multipart ``file`` field, and its type."""
    images, _ = mnist_test_set(1)
    return multipart_body("file", [png_bytes(images[0])])


def one_digit_infer_request() -> tuple[bytes, str]:
    """The first MNIST test digit as a V2 JSON inference request (UINT8 [1, 28, 28])."""
    images, _ = mnist_test_set(1)
    tensor = {"name": "image", "shape": [1, 28, 28], "datatype": "UINT8"}
    tensor["data"] = images[0].reshape(-1).tolist()
    return json.dumps({"inputs": [tensor]}).encode(), "application/json"
