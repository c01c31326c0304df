"""Edit an exported ONNX classifier: read its hidden layers, fold in a temperature, add a head.

The exported graph is the notebook's dense stack: ``image`` -> /255 -> MatMul/Add/Relu ... ->
MatMul/Add -> Softmax -> ``probabilities``. The edits keep every trained weight as it is; they
divide the logits by ``T`` before the softmax and add a ``digit_score`` output computed from the
hidden activations by a small head beside the dense layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper, numpy_helper

INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
SCORE_NAME = "digit_score"
HEAD_PREFIX = "digit_head"
TEMPERATURE_NODE = "Temperature"
BATCH_DIMENSION = "batch"
RUN_BATCH = 2000


@dataclass(frozen=True)
class Layout:
    """Names of the tensors the edits hang on: hidden activations, logits, the softmax node."""

    hidden: tuple[str, ...]
    logits: str
    softmax_index: int


@dataclass(frozen=True)
class Head:
    """A small MLP on the concatenated pixels and hidden activations, ending in a sigmoid.

    ``layers`` are (weights, bias) pairs; every layer but the last is followed by a ReLU. The
    features' standardisation is folded into the first layer.
    """

    layers: tuple[tuple[np.ndarray, np.ndarray], ...]

    def scores(self, features: np.ndarray) -> np.ndarray:
        """The numpy reference for the graph's ``digit_score``."""
        values = features.astype(np.float32)
        for index, (weights, bias) in enumerate(self.layers):
            values = values @ weights + bias
            if index < len(self.layers) - 1:
                values = np.maximum(values, 0.0)
        return 1.0 / (1.0 + np.exp(-np.clip(values[:, 0], -80.0, 80.0)))


def layout(proto: onnx.ModelProto) -> Layout:
    """Find the softmax that makes ``probabilities``, its logits and the features of the head.

    The features are the scaled pixels (the first MatMul's input), the outputs of every Relu but
    the last, and the input of the last MatMul (the penultimate layer after its batch norm).
    """
    nodes = list(proto.graph.node)
    softmax = [i for i, node in enumerate(nodes) if list(node.output) == [OUTPUT_NAME]]
    if not softmax or nodes[softmax[0]].op_type != "Softmax":
        raise ValueError(f"the graph's {OUTPUT_NAME!r} does not come from a Softmax")
    matmuls = [node for node in nodes if node.op_type == "MatMul"]
    relus = [node.output[0] for node in nodes if node.op_type == "Relu"]
    if not matmuls or not relus:
        raise ValueError("the graph has no dense layers to read")
    penultimate = matmuls[-1].input[0]
    hidden = tuple(dict.fromkeys([matmuls[0].input[0], *relus[:-1], penultimate]))
    return Layout(hidden, nodes[softmax[0]].input[0], softmax[0])


def activations(onnx_bytes: bytes, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The model's logits [N, 10] and concatenated hidden activations [N, F] for uint8 images."""
    proto = onnx.load_from_string(onnx_bytes)
    found = layout(proto)
    names = [found.logits, *found.hidden]
    for name in names:
        proto.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    session = onnxruntime.InferenceSession(
        proto.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    runs = [
        session.run(names, {INPUT_NAME: images[start : start + RUN_BATCH]})
        for start in range(0, len(images), RUN_BATCH)
    ]
    logits = np.concatenate([run[0] for run in runs])
    features = np.concatenate([np.concatenate(run[1:], axis=1) for run in runs])
    return logits, features


def without_edits(onnx_bytes: bytes) -> bytes:
    """The exported graph as it was before ``with_temperature_and_head`` (unchanged if never
    edited), so the stage can run again on a model it already shipped."""
    proto = onnx.load_from_string(onnx_bytes)
    graph = proto.graph
    temperature = [node for node in graph.node if node.name == TEMPERATURE_NODE]
    if not temperature:
        return onnx_bytes
    logits = temperature[0].input[0]
    kept = [
        node for node in graph.node if node.name != TEMPERATURE_NODE and not is_head_node(node.name)
    ]
    for node in kept:
        node.input[:] = [
            logits if name == temperature[0].output[0] else name for name in node.input
        ]
    del graph.node[:]
    graph.node.extend(kept)
    initializers = [
        value
        for value in graph.initializer
        if value.name != TEMPERATURE_NODE.lower() and not is_head_node(value.name)
    ]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    outputs = [value for value in graph.output if value.name != SCORE_NAME]
    del graph.output[:]
    graph.output.extend(outputs)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def with_temperature_and_head(onnx_bytes: bytes, temperature: float, head: Head) -> bytes:
    """The same model with ``probabilities = softmax(logits / T)`` and a ``digit_score`` output."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    proto = onnx.load_from_string(onnx_bytes)
    found = layout(proto)
    graph = proto.graph
    scaled = f"{HEAD_PREFIX}_scaled_logits"
    softmax = graph.node[found.softmax_index]
    softmax.input[0] = scaled
    temperature_node = helper.make_node(
        "Div", [found.logits, TEMPERATURE_NODE.lower()], [scaled], name=TEMPERATURE_NODE
    )
    graph.node.insert(found.softmax_index, temperature_node)
    graph.initializer.append(
        numpy_helper.from_array(np.array(temperature, np.float32), TEMPERATURE_NODE.lower())
    )
    _append_head(graph, found.hidden, head)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def is_head_node(name: str) -> bool:
    """Whether a node belongs to the head, which int8 quantisation leaves in float32."""
    return name.startswith(HEAD_PREFIX)


def _append_head(graph: onnx.GraphProto, hidden: tuple[str, ...], head: Head) -> None:
    """Concat -> (MatMul, Add, Relu)... -> MatMul, Add -> Sigmoid -> [batch] ``digit_score``."""

    def name(step: str) -> str:
        return f"{HEAD_PREFIX}_{step}"

    def node(op_type: str, inputs: list[str], step: str, **attributes: object) -> str:
        graph.node.append(
            helper.make_node(op_type, inputs, [name(step)], name=name(step), **attributes)
        )
        return name(step)

    def constant(value: np.ndarray, step: str) -> str:
        graph.initializer.append(numpy_helper.from_array(value, name(step)))
        return name(step)

    values = node("Concat", list(hidden), "features", axis=1)
    for index, (weights, bias) in enumerate(head.layers):
        values = node(
            "MatMul", [values, constant(weights.astype(np.float32), f"w{index}")], f"matmul{index}"
        )
        values = node(
            "Add", [values, constant(bias.astype(np.float32), f"b{index}")], f"add{index}"
        )
        if index < len(head.layers) - 1:
            values = node("Relu", [values], f"relu{index}")
    values = node("Sigmoid", [values], "sigmoid")
    shape = constant(np.array([-1], np.int64), "shape")
    graph.node.append(
        helper.make_node("Reshape", [values, shape], [SCORE_NAME], name=name("flatten"))
    )
    graph.output.append(
        helper.make_tensor_value_info(SCORE_NAME, TensorProto.FLOAT, [BATCH_DIMENSION])
    )
