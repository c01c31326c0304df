"""Tiny real ONNX models with the shipped model's signature, built with ``onnx.helper``."""

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

LABELS = [str(digit) for digit in range(10)]


def build_tiny_model(
    seed: int = 0,
    input_name: str = "image",
    output_name: str = "probabilities",
    input_type: int = TensorProto.UINT8,
) -> onnx.ModelProto:
    """image uint8 [N, 28, 28] -> /255 -> one dense layer -> softmax -> probabilities [N, 10]."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(0.0, 0.05, size=(784, 10)).astype(np.float32)
    bias = rng.normal(0.0, 0.01, size=(10,)).astype(np.float32)
    initializers = [
        numpy_helper.from_array(weights, "weights"),
        numpy_helper.from_array(bias, "bias"),
        numpy_helper.from_array(np.array([1.0 / 255.0], dtype=np.float32), "scale"),
        numpy_helper.from_array(np.array([-1, 784], dtype=np.int64), "flat_shape"),
    ]
    nodes = [
        helper.make_node("Cast", [input_name], ["as_float"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["as_float", "scale"], ["scaled"]),
        helper.make_node("Reshape", ["scaled", "flat_shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "weights"], ["logits_raw"]),
        helper.make_node("Add", ["logits_raw", "bias"], ["logits"]),
        helper.make_node("Softmax", ["logits"], [output_name], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_mnist",
        [helper.make_tensor_value_info(input_name, input_type, ["batch", 28, 28])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["batch", 10])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def card_for(model_bytes: bytes, name: str = "mnist_mlp", version: str = "1") -> dict:
    """A model card with the fields the service reads."""
    return {
        "name": name,
        "version": version,
        "sha256": hashlib.sha256(model_bytes).hexdigest(),
        "architecture": "tiny_test_model",
        "inputs": [{"name": "image", "datatype": "UINT8", "shape": [-1, 28, 28]}],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}],
        "labels": LABELS,
        "normalization": {"scale": 1.0 / 255.0, "in_graph": True},
        "opset": 17,
    }


def write_model(
    directory: Path,
    model: onnx.ModelProto | None = None,
    stem: str = "mnist_mlp",
    **card_overrides,
) -> Path:
    """Write ``<stem>.onnx`` and its card into ``directory``; returns the model path."""
    model_bytes = (model or build_tiny_model()).SerializeToString()
    model_path = directory / f"{stem}.onnx"
    model_path.write_bytes(model_bytes)
    card = card_for(model_bytes) | card_overrides
    model_path.with_suffix(".json").write_text(json.dumps(card, indent=2), encoding="utf-8")
    return model_path
