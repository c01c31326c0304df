"""The machine-readable model card: with the ONNX signature, all that training shares."""

import json
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from service.inference.errors import describe_validation_errors

# Triton names a model's versions by positive int64s, and its tools (perf_analyzer among them)
# read them back with std::stoll: anything else is lost or aborts them.
LARGEST_VERSION = 2**63 - 1
VERSION_EXPECTED = 'expected a positive integer such as "1", as Triton names versions'


def card_beside(model_path: Path) -> Path:
    """Where a model's card is unless told otherwise: beside it, named as it is, ``.json``."""
    return model_path.with_suffix(".json")


def is_version(text: object) -> bool:
    """Whether ``text`` names a version as Triton does: ``"1"`` to ``"9223372036854775807"``,
    digits only (no sign, space or leading zero)."""
    return (
        isinstance(text, str)
        and text.isascii()
        and text.isdigit()
        and not text.startswith("0")
        and len(text) <= len(str(LARGEST_VERSION))
        and int(text) <= LARGEST_VERSION
    )


def version_problem(version: object, model: str | None = None) -> str | None:
    """What is wrong with ``version`` as the name of a version (None: nothing), such as
    ``'20261206-56941f5d' of mnist_mlp: expected a positive integer ...``."""
    if is_version(version):
        return None
    written = "" if isinstance(version, str) else ", written as a string"
    return f"{version!r}{f' of {model}' if model else ''}: {VERSION_EXPECTED}{written}"


class ModelLoadError(Exception):
    """The model or its card cannot be served; the message names the file and the problem."""


class TensorSpec(BaseModel):
    """One named tensor as the V2 protocol describes it."""

    name: str
    datatype: str = Field(description="KServe V2 datatype, e.g. UINT8 or FP32.")
    shape: list[int] = Field(description="-1 marks the dynamic batch dimension.")


class DigitScoreRule(BaseModel):
    """How the card's model says "not a digit": an output and the threshold it is read with."""

    model_config = ConfigDict(extra="allow", frozen=True)

    output: str = Field("digit_score", description="The FP32 [-1] output, 0-1, higher = digit.")
    threshold: float = Field(ge=0.0, le=1.0, description="Scores below it are not a digit.")


class ModelCard(BaseModel):
    """What the service needs of ``models/mnist_mlp.json``; other keys are kept but not read."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str
    version: str
    sha256: str | None = None
    inputs: list[TensorSpec] = Field(min_length=1, max_length=1)
    outputs: list[TensorSpec] = Field(min_length=1)
    labels: list[str]
    created: datetime | None = Field(
        None, description="When the model was built (ISO 8601); picks the newest version."
    )
    digit_score: DigitScoreRule | None = Field(
        None, description="The reject option, when the model has one (``training.calibrate``)."
    )
    quantization: dict[str, Any] | None = Field(
        None, description="How the weights were quantised (``benchmarks.quantize``), if they were."
    )

    @field_validator("version", mode="before")
    @classmethod
    def _triton_version(cls, version: object, info: ValidationInfo) -> object:
        """A positive integer in a string, as Triton names versions (``is_version``)."""
        problem = version_problem(version, info.data.get("name"))
        if problem is not None:
            raise PydanticCustomError("model_version", "{problem}", {"problem": problem})
        return version

    @cached_property
    def batch_independent(self) -> bool:
        """Whether an image's answer is the same whatever else shares its model call: not so
        under dynamic quantisation, which scales the activations over the whole call, so such
        a model's requests are never batched together."""
        method = (self.quantization or {}).get("method", "")
        return "dynamic" not in str(method)


def read_model_card(path: Path) -> ModelCard:
    """Parse the card, turning every failure into a one-line ``ModelLoadError``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelLoadError(f"model card {path}: file not found") from None
    except OSError as error:
        raise ModelLoadError(f"model card {path}: cannot read: {error.strerror}") from None
    try:
        return ModelCard.model_validate(json.loads(text))
    except json.JSONDecodeError as error:
        raise ModelLoadError(f"model card {path}: not valid JSON: {error}") from None
    except ValidationError as error:
        raise ModelLoadError(f"model card {path}: {describe_validation_errors(error)}") from None
