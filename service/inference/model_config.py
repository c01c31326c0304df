"""Triton's model configuration extension: the JSON form of Triton's ``ModelConfig`` message
(``model_config.proto``) for a model version as it is really served.

Generated from the version's card and the settings, never written per model: the tensors come
from the card (the leading -1 is the batch dimension, which Triton leaves out of ``dims`` and
expresses as ``max_batch_size``), the batch limit and dynamic batching from the settings. Tools
read it before sending anything: perf_analyzer takes ``max_batch_size`` (0 would refuse ``-b``
above 1) and the shapes it sends from ``dims``.
"""

from typing import Any

from service.inference.datatypes import triton_type
from service.inference.model_card import ModelCard, TensorSpec
from service.settings import Settings

PLATFORM = "onnxruntime_onnx"
BACKEND = "onnxruntime"
BATCH_DIMENSION = -1


def batched(card: ModelCard) -> bool:
    """Whether every tensor of the card leads with the dynamic batch dimension."""
    tensors = [*card.inputs, *card.outputs]
    return all(tensor.shape[:1] == [BATCH_DIMENSION] for tensor in tensors)


def _tensor(spec: TensorSpec, batch: bool) -> dict[str, Any]:
    return {
        "name": spec.name,
        "data_type": triton_type(spec.datatype),
        "dims": spec.shape[1:] if batch else list(spec.shape),
    }


def model_config(card: ModelCard, settings: Settings) -> dict[str, Any]:
    """The configuration of the model version ``card`` describes, as Triton answers it.

    ``max_batch_size`` is ``MNIST_MAX_BATCH_SIZE`` (the most images one request may carry);
    ``dynamic_batching`` is present when concurrent requests for this model may share a call
    (on, and the model's answers do not depend on the company of an image); every version of
    a model is served, so the version policy is ``all``.
    """
    batch = batched(card)
    config: dict[str, Any] = {
        "name": card.name,
        "platform": PLATFORM,
        "backend": BACKEND,
        "version_policy": {"all": {}},
        "max_batch_size": settings.max_batch_size if batch else 0,
        "input": [_tensor(spec, batch) for spec in card.inputs],
        "output": [_tensor(spec, batch) for spec in card.outputs],
        "instance_group": [{"name": card.name, "kind": "KIND_CPU", "count": 1}],
    }
    if batch and settings.dynamic_batching and card.batch_independent:
        config["dynamic_batching"] = {}
    return config
