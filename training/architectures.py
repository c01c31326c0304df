"""The notebook's three MLPs as plain data, so tests and the report read them without TensorFlow.

The notebook's initialiser lines are cut after ``stddev=0``. Two readings exist: its sister
notebooks use 0.039 on the first Dense layer and 0.55 on the later hidden ones (the default here),
or 0.55 on every hidden layer. ``with_reading`` builds the second; the study in ``training.study``
trains both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

DENSE = "dense"
DROPOUT = "dropout"
BATCH_NORMALIZATION = "batch_normalization"


@dataclass(frozen=True)
class Initializer:
    """A Keras initialiser by class name and arguments, e.g. RandomNormal(mean=0, stddev=0.039)."""

    class_name: str
    arguments: Mapping[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        """Short human form for the report, e.g. ``RandomNormal(0, 0.55)``."""
        if self.class_name == "RandomNormal":
            return f"RandomNormal({self.arguments['mean']:g}, {self.arguments['stddev']:g})"
        return self.class_name


@dataclass(frozen=True)
class Layer:
    """One layer: Dense (units, activation, kernel initialiser), Dropout (rate) or BatchNorm."""

    kind: str
    units: int | None = None
    activation: str | None = None
    initializer: Initializer | None = None
    rate: float | None = None


@dataclass(frozen=True)
class NotebookFigures:
    """Accuracies the original notebook published for an architecture (it validated on test)."""

    train_accuracy: float
    test_accuracy: float


@dataclass(frozen=True)
class Architecture:
    """A named stack of layers on 784 flat inputs, with what the notebook reported for it."""

    name: str
    layers: tuple[Layer, ...]
    notebook: NotebookFigures

    @property
    def dense_layers(self) -> tuple[Layer, ...]:
        """The Dense layers in order; the last one is the softmax output."""
        return tuple(layer for layer in self.layers if layer.kind == DENSE)

    @property
    def dropout_layers(self) -> tuple[Layer, ...]:
        """The Dropout layers in order."""
        return tuple(layer for layer in self.layers if layer.kind == DROPOUT)


KERAS_DEFAULT_KERNEL = Initializer("GlorotUniform")
NARROW_NORMAL = Initializer("RandomNormal", {"mean": 0.0, "stddev": 0.039})
WIDE_NORMAL = Initializer("RandomNormal", {"mean": 0.0, "stddev": 0.55})
HE_NORMAL = Initializer("HeNormal")
DROPOUT_RATE = 0.5
OUTPUT = Layer(DENSE, units=10, activation="softmax", initializer=KERAS_DEFAULT_KERNEL)
HALF_DROPOUT = Layer(DROPOUT, rate=DROPOUT_RATE)


def hidden(units: int, initializer: Initializer) -> Layer:
    """A relu Dense hidden layer."""
    return Layer(DENSE, units=units, activation="relu", initializer=initializer)


ARCHITECTURES: dict[str, Architecture] = {
    "model_1": Architecture(
        name="model_1",
        layers=(
            hidden(512, NARROW_NORMAL),
            HALF_DROPOUT,
            hidden(128, WIDE_NORMAL),
            HALF_DROPOUT,
            OUTPUT,
        ),
        notebook=NotebookFigures(train_accuracy=0.5899, test_accuracy=0.6646),
    ),
    "model_2": Architecture(
        name="model_2",
        layers=(
            hidden(512, NARROW_NORMAL),
            hidden(128, WIDE_NORMAL),
            HALF_DROPOUT,
            hidden(64, WIDE_NORMAL),
            HALF_DROPOUT,
            OUTPUT,
        ),
        notebook=NotebookFigures(train_accuracy=0.459, test_accuracy=0.467),
    ),
    "model_3": Architecture(
        name="model_3",
        layers=(
            hidden(512, HE_NORMAL),
            hidden(128, HE_NORMAL),
            HALF_DROPOUT,
            hidden(128, HE_NORMAL),
            hidden(64, HE_NORMAL),
            hidden(32, HE_NORMAL),
            HALF_DROPOUT,
            Layer(BATCH_NORMALIZATION),
            OUTPUT,
        ),
        notebook=NotebookFigures(train_accuracy=0.98, test_accuracy=0.9815),
    ),
}


NARROW_FIRST = "narrow-first"
WIDE_EVERYWHERE = "wide-everywhere"
INITIALISER_READINGS = {
    NARROW_FIRST: "RandomNormal(0, 0.039) on the first hidden layer, (0, 0.55) on the others",
    WIDE_EVERYWHERE: "RandomNormal(0, 0.55) on every hidden layer",
}


def with_reading(architecture: Architecture, reading: str) -> Architecture:
    """The architecture under one reading of the truncated initialiser lines.

    Only models whose hidden layers start RandomNormal(0, 0.039) change: under
    ``wide-everywhere`` that first layer gets 0.55 too. Layers and parameter counts stay.
    """
    if reading not in INITIALISER_READINGS:
        known = ", ".join(INITIALISER_READINGS)
        raise ValueError(f"unknown initialiser reading {reading!r}; choose from {known}")
    if reading == NARROW_FIRST:
        return architecture
    layers = tuple(
        replace(layer, initializer=WIDE_NORMAL) if layer.initializer == NARROW_NORMAL else layer
        for layer in architecture.layers
    )
    return replace(architecture, layers=layers)


def get_architecture(name: str) -> Architecture:
    """The architecture called ``name``; a ValueError lists the known names otherwise."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]
