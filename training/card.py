"""The two model cards: ``mnist_mlp.json`` for the service, ``README.md`` for people."""

from __future__ import annotations

import hashlib
import os
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np

from service.inference.repository_files import highest_version
from training.assessment import Robustness, confusion_matrix, per_class_accuracy
from training.builder import LOSS, OPTIMIZER
from training.data import CLASS_COUNT
from training.export import OPSET, PARITY_TOLERANCE, PIXEL_SCALE, Exported, signature
from training.fit import ROBUST_RECIPE, Candidate, Settings
from training.plots import loss_plot_name, weights_plot_name
from training.report import candidate_row
from training.robust import SELECTION_RULE, augmentation_summary

MODEL_NAME = "mnist_mlp"
NOTEBOOK_SELECTION_RULE = (
    "each model keeps the weights of its epoch with the best validation accuracy; "
    "the model with the best validation accuracy is exported"
)
LIBRARIES = ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "numpy")
TRAIN_ACCURACY_MEANING = (
    "accuracy on the training split (without the validation images), evaluated after training "
    "with dropout off"
)


@dataclass(frozen=True)
class RunFacts:
    """What the cards say about the run besides the candidates: settings, data, export."""

    settings: Settings
    split: dict[str, object]
    data_source: str
    exported: Exported
    robustness: Robustness | None = None
    test_images: np.ndarray | None = None
    test_labels: np.ndarray | None = None
    created: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    version: int = 1


def sha256_hex(content: bytes) -> str:
    """Hex SHA-256, as the card records it and the service checks it."""
    return hashlib.sha256(content).hexdigest()


def next_version(folder: Path) -> int:
    """One more than the highest version of the model among ``folder``'s cards (1 if none):
    versions are integers, as Triton names them, and a retrained model gets a new one."""
    return highest_version(folder, MODEL_NAME) + 1


def machine_card(candidates: list[Candidate], winner: Candidate, facts: RunFacts) -> dict:
    """The JSON card: identity, signature, normalisation, provenance, metrics and all candidates."""
    sha256 = sha256_hex(facts.exported.onnx_bytes)
    return {
        "name": MODEL_NAME,
        "version": str(facts.version),
        "created": facts.created.isoformat().replace("+00:00", "Z"),
        "sha256": sha256,
        "architecture": winner.name,
        "description": "MLP classifying a 28x28 MNIST-style digit (light on dark) into 0-9.",
        **signature(facts.exported.onnx_bytes),
        "labels": [str(digit) for digit in range(CLASS_COUNT)],
        "normalization": {"scale": PIXEL_SCALE, "in_graph": True},
        "opset": OPSET,
        "libraries": {name: metadata.version(name) for name in LIBRARIES},
        "training": _training_section(facts),
        "metrics": {
            "train_accuracy": winner.train.accuracy,
            "validation_accuracy": winner.validation.accuracy,
            "test_accuracy": winner.test.accuracy,
            "test_loss": winner.test.loss,
            **_test_details(winner, facts),
        },
        "parity": {
            "images": facts.exported.images_checked,
            "max_abs_difference": facts.exported.max_abs_difference,
            "tolerance": PARITY_TOLERANCE,
            "argmax_identical": True,
        },
        "candidates": [
            {**candidate_row(candidate), "selected": candidate is winner}
            for candidate in candidates
        ],
        **_robustness_section(facts),
    }


def _test_details(winner: Candidate, facts: RunFacts) -> dict[str, object]:
    """Per-digit accuracy and the confusion matrix on the test set, when the labels are known."""
    if facts.test_labels is None:
        return {}
    return {
        "per_class_test_accuracy": per_class_accuracy(winner, facts.test_labels),
        "test_confusion_matrix": confusion_matrix(winner, facts.test_labels),
    }


def _robustness_section(facts: RunFacts) -> dict[str, object]:
    """A robust run's validation scores (what chose) and test suite (what users get)."""
    if facts.robustness is None:
        return {}
    return {
        "robustness": {
            "validation": facts.robustness.validation,
            "test_suite": facts.robustness.test,
            "test_images": facts.robustness.test_images,
            "suite_command": "python -m training.robustness MODEL.onnx",
        }
    }


def _training_section(facts: RunFacts) -> dict[str, object]:
    """How the candidates were trained and the winner chosen."""
    return {
        **asdict(facts.settings),
        "optimizer": f"{OPTIMIZER} (Keras defaults)",
        "loss": LOSS if facts.settings.loss == "keras3" else facts.settings.loss,
        "split": facts.split,
        "selection": (
            SELECTION_RULE if facts.settings.recipe == ROBUST_RECIPE else NOTEBOOK_SELECTION_RULE
        ),
        **(
            {"robust_recipe": augmentation_summary()}
            if facts.settings.recipe == ROBUST_RECIPE
            else {}
        ),
        "train_accuracy_means": TRAIN_ACCURACY_MEANING,
        "data_source": facts.data_source,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
    }


def plot_links(candidates: list[Candidate]) -> list[str]:
    """Markdown image links to every candidate's figures, relative to the README."""
    return [
        f"![{candidate.name} {kind}](plots/{name(candidate.name)})"
        for candidate in candidates
        for kind, name in (("loss", loss_plot_name), ("weights", weights_plot_name))
    ]


def write_atomically(path: Path, content: bytes) -> None:
    """Write through a temporary file and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(content)
    os.replace(temporary, path)
