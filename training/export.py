"""Export a Keras model to ONNX with the 1/255 scaling in the graph, and prove it agrees with Keras.

``tf2onnx.convert.from_keras`` fails on Keras 3, so the model is wrapped in a ``tf.function`` taking
raw uint8 pixels and converted with ``from_function``. Serving then cannot get the scaling wrong.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import keras
import numpy as np
import onnx
import onnxruntime
import tensorflow as tf
import tf2onnx

from training.data import CLASS_COUNT, IMAGE_SIDE
from training.errors import ParityError
from training.splits import FLAT_SIZE

OPSET = 17
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
BATCH_DIMENSION = "batch"
PIXEL_SCALE = 1.0 / 255.0
PARITY_TOLERANCE = 1e-5
EXPECTED_SIGNATURE = {
    "inputs": [{"name": INPUT_NAME, "datatype": "UINT8", "shape": [-1, IMAGE_SIDE, IMAGE_SIDE]}],
    "outputs": [{"name": OUTPUT_NAME, "datatype": "FP32", "shape": [-1, CLASS_COUNT]}],
}


@dataclass(frozen=True)
class Exported:
    """The serialised ONNX model and how closely it matched Keras on the test images."""

    onnx_bytes: bytes
    max_abs_difference: float
    images_checked: int


def export_and_check(
    model: keras.Model, test_images: np.ndarray, keras_probabilities: np.ndarray
) -> Exported:
    """Convert, then compare ONNX Runtime on raw uint8 images with Keras' probabilities on /255."""
    onnx_bytes = to_onnx(model)
    found_signature = signature(onnx_bytes)
    if found_signature != EXPECTED_SIGNATURE:
        raise ParityError(f"ONNX signature {found_signature} is not {EXPECTED_SIGNATURE}")
    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    (onnx_probabilities,) = session.run([OUTPUT_NAME], {INPUT_NAME: test_images})
    difference = float(np.max(np.abs(onnx_probabilities - keras_probabilities)))
    disagreements = int(
        np.sum(onnx_probabilities.argmax(axis=1) != keras_probabilities.argmax(axis=1))
    )
    if difference > PARITY_TOLERANCE or disagreements:
        raise ParityError(
            f"ONNX vs Keras on {len(test_images)} test images: max |difference| {difference:.3g} "
            f"(limit {PARITY_TOLERANCE:g}), {disagreements} different predictions; nothing written"
        )
    return Exported(onnx_bytes, difference, len(test_images))


def to_onnx(model: keras.Model) -> bytes:
    """ONNX bytes: ``image`` uint8 [batch, 28, 28] in, ``probabilities`` float32 [batch, 10] out."""

    @tf.function(
        input_signature=[tf.TensorSpec([None, IMAGE_SIDE, IMAGE_SIDE], tf.uint8, name=INPUT_NAME)]
    )
    def classify(image: tf.Tensor) -> dict[str, tf.Tensor]:
        pixels = tf.reshape(tf.cast(image, tf.float32) / 255.0, [-1, FLAT_SIZE])
        return {OUTPUT_NAME: model(pixels, training=False)}

    logging.getLogger("tf2onnx").setLevel(logging.WARNING)
    proto, _ = tf2onnx.convert.from_function(
        classify, input_signature=classify.input_signature, opset=OPSET
    )
    _name_batch_dimension(proto)
    _canonical_names(proto)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def _name_batch_dimension(proto: onnx.ModelProto) -> None:
    """Give the dynamic first dimension of the input and output the readable name ``batch``."""
    for value in (*proto.graph.input, *proto.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = BATCH_DIMENSION


def _canonical_names(proto: onnx.ModelProto) -> None:
    """Rename nodes and inner tensors by position, so the same weights always give the same bytes.

    tf2onnx's names carry process-wide counters (``const_fold_opt__7``), which change the sha256.
    """
    kept = {value.name for value in (*proto.graph.input, *proto.graph.output)}
    renamed: dict[str, str] = {}

    def canonical(name: str) -> str:
        if not name or name in kept:
            return name
        return renamed.setdefault(name, f"tensor_{len(renamed)}")

    for initializer in proto.graph.initializer:
        initializer.name = canonical(initializer.name)
    for index, node in enumerate(proto.graph.node):
        node.name = f"{node.op_type}_{index}"
        node.input[:] = [canonical(name) for name in node.input]
        node.output[:] = [canonical(name) for name in node.output]
    for value in proto.graph.value_info:
        value.name = canonical(value.name)
    proto.graph.doc_string = ""


def signature(onnx_bytes: bytes) -> dict[str, list[dict[str, object]]]:
    """Inputs and outputs as the model card states them (KServe V2 datatypes, -1 for batch)."""
    proto = onnx.load_from_string(onnx_bytes)
    return {
        "inputs": [_tensor_spec(value) for value in proto.graph.input],
        "outputs": [_tensor_spec(value) for value in proto.graph.output],
    }


def _tensor_spec(value: onnx.ValueInfoProto) -> dict[str, object]:
    """Name, V2 datatype and shape of one graph input or output."""
    tensor_type = value.type.tensor_type
    datatype = {onnx.TensorProto.UINT8: "UINT8", onnx.TensorProto.FLOAT: "FP32"}[
        tensor_type.elem_type
    ]
    shape = [dim.dim_value if dim.HasField("dim_value") else -1 for dim in tensor_type.shape.dim]
    return {"name": value.name, "datatype": datatype, "shape": shape}
