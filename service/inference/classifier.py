"""The ONNX model in an onnxruntime session, checked against its card before it serves."""

import hashlib
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import onnxruntime

from service.inference.costs import inference_bytes
from service.inference.cpus import available_cpus
from service.inference.datatypes import v2_name_of_onnx_type
from service.inference.model_card import ModelCard, ModelLoadError, TensorSpec, read_model_card

logger = logging.getLogger("service.classifier")

IMAGE_SIDE = 28
CLASS_COUNT = 10
# From this many images a call runs on every core: a batch amortises the threads' wake-up,
# while a single image would only pay for it (benchmarks/bulk.py, --intra-op-threads).
BULK_BATCH = 128
# The bulk session's arena keeps what calls of up to this many images need; a larger call gives
# its memory back when it ends, so one huge batch does not stay resident (benchmarks/bulk.py).
ARENA_KEEPS_IMAGES = 4096
_GIVE_BACK = onnxruntime.RunOptions()
_GIVE_BACK.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")


@dataclass(frozen=True)
class Classifier:
    """A loaded, verified model: ``predict`` maps uint8 [N, 28, 28] to probabilities [N, 10]."""

    session: onnxruntime.InferenceSession
    bulk_session: onnxruntime.InferenceSession
    card: ModelCard
    model_path: Path

    @cached_property
    def input_name(self) -> str:
        return self.card.inputs[0].name

    @cached_property
    def output_name(self) -> str:
        return self.card.outputs[0].name

    @cached_property
    def label_array(self) -> np.ndarray:
        """The card's labels, indexable by class number."""
        return np.asarray(self.card.labels)

    @cached_property
    def image_elements(self) -> int:
        """The input elements of one image (its shape's fixed sizes): 784."""
        return math.prod(size for size in self.card.inputs[0].shape if size > 0)

    @cached_property
    def slice_elements(self) -> int | None:
        """The input elements of one slice of a large batch (``run``), or None for a model that
        runs every batch whole: what the in-flight budget charges (``costs.inference_bytes``)."""
        if not self.card.batch_independent:
            return None
        return ARENA_KEEPS_IMAGES * IMAGE_SIDE * IMAGE_SIDE

    def call_bytes(self, shapes: Iterable[list[int]], max_batch_size: int) -> int:
        """What a model call on tensors of ``shapes`` holds, for the in-flight budget, with
        requests of more than ``max_batch_size`` images refused before their call."""
        return inference_bytes(shapes, max_batch_size * self.image_elements, self.slice_elements)

    @cached_property
    def score_name(self) -> str | None:
        """The ``digit_score`` output's name, or None for a model without a reject option."""
        rule = self.card.digit_score
        return None if rule is None else rule.output

    def digits(self, probabilities: np.ndarray) -> list[str]:
        """The label of the most probable class of each row."""
        return self.label_array[probabilities.argmax(axis=1)].tolist()

    def predict(self, images: np.ndarray) -> np.ndarray:
        """One vectorised call for the whole batch; the graph itself divides by 255."""
        if images.dtype != np.uint8 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
            raise ValueError(f"expected uint8 [N, 28, 28], got {images.dtype} {images.shape}")
        return self.run([self.output_name], images)[0]

    def run(self, output_names: Sequence[str], images: np.ndarray) -> list[np.ndarray]:
        """Run for the named outputs, for callers (the V2 protocol) that choose them.

        A model whose answers do not depend on the other images of its call runs a large batch
        in slices of ``ARENA_KEEPS_IMAGES``: the activations held at once stay those of one
        slice (the in-flight budget's per-image charge), whatever the batch.
        """
        if len(images) < BULK_BATCH:
            return self.session.run(output_names, {self.input_name: images})
        if len(images) <= ARENA_KEEPS_IMAGES:
            return self.bulk_session.run(output_names, {self.input_name: images})
        if not self.card.batch_independent:
            return self.bulk_session.run(output_names, {self.input_name: images}, _GIVE_BACK)
        slices = [
            self.bulk_session.run(
                output_names, {self.input_name: images[start : start + ARENA_KEEPS_IMAGES]}
            )
            for start in range(0, len(images), ARENA_KEEPS_IMAGES)
        ]
        return [np.concatenate(outputs) for outputs in zip(*slices, strict=True)]

    @classmethod
    def from_files(
        cls, model_path: Path, card_path: Path, intra_op_threads: int = 1
    ) -> "Classifier":
        """Read, verify and warm up the model; a problem is a ``ModelLoadError`` naming the file.

        The model file is what the user named, so it is read first and every message starts
        with it; a card that is missing or broken comes second, as the model's card.
        """
        model_bytes = _read_model_bytes(model_path)
        try:
            card = read_model_card(card_path)
        except ModelLoadError as error:
            raise ModelLoadError(f"model {model_path}: {error}") from None
        if card.sha256 and hashlib.sha256(model_bytes).hexdigest() != card.sha256:
            raise ModelLoadError(f"model {model_path}: sha256 differs from the card {card_path}")
        session = _open_session(model_path, model_bytes, intra_op_threads)
        _check_signature(model_path, session, card)
        bulk_threads = max(intra_op_threads, available_cpus())
        bulk_session = _open_session(model_path, model_bytes, bulk_threads, arena=True)
        classifier = cls(session, bulk_session, card=card, model_path=model_path)
        for batch in (1, BULK_BATCH):
            classifier.predict(np.zeros((batch, IMAGE_SIDE, IMAGE_SIDE), dtype=np.uint8))
        logger.info("loaded model %s version %s from %s", card.name, card.version, model_path)
        return classifier


def _read_model_bytes(model_path: Path) -> bytes:
    try:
        return model_path.read_bytes()
    except FileNotFoundError:
        raise ModelLoadError(f"model {model_path}: file not found") from None
    except OSError as error:
        raise ModelLoadError(f"model {model_path}: cannot read: {error.strerror}") from None


def _open_session(
    model_path: Path, model_bytes: bytes, intra_op_threads: int, arena: bool = False
) -> onnxruntime.InferenceSession:
    """No spinning threads: between requests a short inference must not burn a second core."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # Large batches keep their buffers in onnxruntime's arena. Without it, each call's
    # activations came from malloc, which in a worker thread (where large requests run) often
    # handed fresh pages back and faulted them in again, in some runs and not others
    # (benchmarks/bulk.py). One image needs no arena.
    options.enable_cpu_mem_arena = arena
    options.log_severity_level = 3
    try:
        return onnxruntime.InferenceSession(
            model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as error:
        first_line = (
            str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        )
        raise ModelLoadError(
            f"model {model_path}: not a loadable ONNX model: {first_line}"
        ) from None


def _describe(node: onnxruntime.NodeArg) -> TensorSpec:
    datatype = v2_name_of_onnx_type(node.type)
    shape = [dim if isinstance(dim, int) else -1 for dim in node.shape]
    return TensorSpec(name=node.name, datatype=datatype, shape=shape)


def _check_signature(
    model_path: Path, session: onnxruntime.InferenceSession, card: ModelCard
) -> None:
    """The card is the contract: the graph must have exactly its inputs and a 28x28 -> 10 shape."""
    expected = {
        "input": (card.inputs, [_describe(node) for node in session.get_inputs()]),
        "output": (card.outputs, [_describe(node) for node in session.get_outputs()]),
    }
    for kind, (declared, actual) in expected.items():
        if declared != actual:
            raise ModelLoadError(
                f"model {model_path}: {kind}s {_summary(actual)} do not match the card's "
                f"{_summary(declared)}"
            )
    image, probabilities = card.inputs[0], card.outputs[0]
    if image.datatype != "UINT8" or image.shape[1:] != [IMAGE_SIDE, IMAGE_SIDE]:
        raise ModelLoadError(f"model {model_path}: input must be UINT8 [-1, 28, 28]")
    if probabilities.datatype != "FP32" or probabilities.shape[1:] != [CLASS_COUNT]:
        raise ModelLoadError(f"model {model_path}: first output must be FP32 [-1, 10]")
    if len(card.labels) != CLASS_COUNT:
        raise ModelLoadError(f"model {model_path}: the card must list {CLASS_COUNT} labels")
    if card.digit_score is not None:
        scores = [output for output in card.outputs if output.name == card.digit_score.output]
        if not scores or scores[0].datatype != "FP32" or scores[0].shape != [-1]:
            raise ModelLoadError(
                f"model {model_path}: the card's digit_score output "
                f"{card.digit_score.output!r} must be an FP32 [-1] output of the model"
            )


def _summary(tensors: list[TensorSpec]) -> str:
    return ", ".join(f"{tensor.name} {tensor.datatype} {tensor.shape}" for tensor in tensors)
