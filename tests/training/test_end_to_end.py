"""A real run on 2,000 MNIST training images for one epoch, into a temporary directory."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from tests.support.mnist import load_test_set
from training import export
from training.cli import main

pytestmark = pytest.mark.slow

QUICK_RUN = ("--limit", "2000", "--epochs", "1", "--seed", "7")
PLOT_NAMES = [
    *(f"model_{index}_{kind}.png" for index in (1, 2, 3) for kind in ("loss", "weights")),
    "confusion_matrix.png",
    "misclassified.png",
    "reliability.png",
    "digit_score.png",
]


@dataclass(frozen=True)
class Run:
    """Where a quick run wrote, and its JSON card."""

    output_dir: Path
    work_dir: Path
    card: dict


def quick_run(mnist_dir: Path, root: Path, *extra: str) -> tuple[int, Path]:
    """``main`` on a small slice, writing under ``root``; returns the exit status and output dir."""
    output_dir = root / "models"
    status = main(
        ["--data-dir", str(mnist_dir), "--output-dir", str(output_dir), "--work-dir",
         str(root / "work"), *QUICK_RUN, *extra]
    )  # fmt: skip
    return status, output_dir


@pytest.fixture(scope="module")
def run(mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("quick_run")
    status, output_dir = quick_run(mnist_dir, root)
    assert status == 0
    card = json.loads((output_dir / "mnist_mlp.json").read_text(encoding="utf-8"))
    return Run(output_dir, root / "work", card)


def test_writes_model_cards_and_plots(run: Run) -> None:
    written = sorted(path.name for path in (run.output_dir / "plots").iterdir())

    assert written == sorted(PLOT_NAMES)
    assert (run.output_dir / "README.md").read_text(encoding="utf-8").count("| model_") == 3
    assert sorted(path.name for path in run.work_dir.iterdir()) == sorted(
        f"model_{index}.{suffix}" for index in (1, 2, 3) for suffix in ("json", "keras")
    )


def test_card_describes_the_onnx_model(run: Run) -> None:
    card = run.card
    onnx_bytes = (run.output_dir / "mnist_mlp.onnx").read_bytes()

    assert card["sha256"] == hashlib.sha256(onnx_bytes).hexdigest()
    assert (card["name"], card["opset"]) == ("mnist_mlp", 17)
    assert card["version"] == "1"  # The first version in a new folder; the int8 model's is 2.
    int8_card = json.loads((run.output_dir / "mnist_mlp.int8.json").read_text(encoding="utf-8"))
    assert int8_card["version"] == "2"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", card["created"])
    assert card["inputs"] == [{"name": "image", "datatype": "UINT8", "shape": [-1, 28, 28]}]
    assert card["outputs"] == [
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
        {"name": "digit_score", "datatype": "FP32", "shape": [-1]},
    ]
    assert card["calibration"]["parity"]["max_abs_difference"] <= 1e-5
    assert card["digit_score"]["threshold"] == 0.5
    assert card["labels"] == [str(digit) for digit in range(10)]
    assert card["normalization"] == {"scale": 1 / 255, "in_graph": True}
    assert card["parity"]["images"] == 10_000
    assert card["parity"]["max_abs_difference"] <= 1e-5
    assert card["training"]["split"]["train"] == 1667
    assert card["training"]["split"]["validation"] == 333


def test_winner_has_the_best_validation_accuracy(run: Run) -> None:
    candidates = run.card["candidates"]
    selected = [row for row in candidates if row["selected"]]

    assert [row["name"] for row in candidates] == ["model_1", "model_2", "model_3"]
    assert [row["name"] for row in selected] == [run.card["architecture"]]
    assert selected[0]["validation_accuracy"] == max(r["validation_accuracy"] for r in candidates)
    assert run.card["metrics"]["test_accuracy"] == selected[0]["test_accuracy"]


def test_onnx_model_scores_what_the_card_says(run: Run, mnist_dir: Path) -> None:
    images, labels = load_test_set(mnist_dir)
    session = onnxruntime.InferenceSession(str(run.output_dir / "mnist_mlp.onnx"))

    (probabilities,) = session.run(["probabilities"], {"image": images})

    accuracy = float(np.mean(probabilities.argmax(axis=1) == labels))
    assert accuracy == pytest.approx(run.card["metrics"]["test_accuracy"], abs=1e-6)


def test_same_seed_gives_the_same_model(run: Run, mnist_dir: Path, tmp_path: Path) -> None:
    status, output_dir = quick_run(mnist_dir, tmp_path, "--models", "model_1")

    again = json.loads((output_dir / "mnist_mlp.json").read_text(encoding="utf-8"))
    first = run.card["candidates"][0]
    assert status == 0
    for key in ("train_accuracy", "validation_accuracy", "test_accuracy", "test_loss"):
        assert again["candidates"][0][key] == first[key]


def test_export_only_reuses_the_trained_models(run: Run, mnist_dir: Path, tmp_path: Path) -> None:
    output_dir = tmp_path / "models"

    status = main(
        ["--data-dir", str(mnist_dir), "--work-dir", str(run.work_dir), "--output-dir",
         str(output_dir), "--export-only"]
    )  # fmt: skip

    card = json.loads((output_dir / "mnist_mlp.json").read_text(encoding="utf-8"))
    assert status == 0
    assert card["metrics"] == run.card["metrics"]
    assert card["sha256"] == run.card["sha256"]
    assert card["training"]["epochs"] == 1


def test_failed_parity_check_writes_nothing(
    run: Run,
    mnist_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(export, "PARITY_TOLERANCE", -1.0)
    output_dir = tmp_path / "models"

    status = main(
        ["--data-dir", str(mnist_dir), "--work-dir", str(run.work_dir), "--output-dir",
         str(output_dir), "--export-only", "--models", "model_1"]
    )  # fmt: skip

    assert status == 1
    assert not output_dir.exists()
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("mnist-mlp-train: error: ONNX vs Keras on 10000 test images")
    assert error.endswith("nothing written")


def test_export_only_without_trained_models_names_the_file(
    mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        ["--data-dir", str(mnist_dir), "--work-dir", str(tmp_path), "--output-dir",
         str(tmp_path / "models"), "--export-only"]
    )  # fmt: skip

    assert status == 1
    assert f"{tmp_path / 'model_1.keras'}: file not found" in capsys.readouterr().err
