"""The two model cards: ``mnist_mlp.json`` for the service, ``README.md`` for people."""

from __future__ import annotations

import hashlib
import os
import platform
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

from training.builder import LOSS, OPTIMIZER
from training.data import CLASS_COUNT
from training.export import OPSET, PARITY_TOLERANCE, PIXEL_SCALE, Exported, signature
from training.fit import Candidate, Settings
from training.plots import loss_plot_name, weights_plot_name
from training.report import candidate_row

MODEL_NAME = "mnist_mlp"
MODEL_VERSION = "1"
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


def sha256_hex(content: bytes) -> str:
    """Hex SHA-256, as the card records it and the service checks it."""
    return hashlib.sha256(content).hexdigest()


def machine_card(candidates: list[Candidate], winner: Candidate, facts: RunFacts) -> dict:
    """The JSON card: identity, signature, normalisation, provenance, metrics and all candidates."""
    return {
        "name": MODEL_NAME,
        "version": MODEL_VERSION,
        "sha256": sha256_hex(facts.exported.onnx_bytes),
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
    }


def _training_section(facts: RunFacts) -> dict[str, object]:
    """How the candidates were trained and the winner chosen."""
    return {
        **asdict(facts.settings),
        "optimizer": f"{OPTIMIZER} (Keras defaults)",
        "loss": LOSS,
        "split": facts.split,
        "selection": (
            "each model keeps the weights of its epoch with the best validation accuracy; "
            "the model with the best validation accuracy is exported"
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
