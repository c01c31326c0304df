"""The robust recipe: its tf.data augmentation, and a small run end to end into a temporary dir."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import pytest

from tests.support.images import mnist_like
from training.cli import main

pytestmark = pytest.mark.slow

ROBUST_RUN = ("--limit", "300", "--epochs", "1", "--models", "model_1", "--recipe", "robust",
              "--robust-models", "model_3", "--robust-epochs", "2", "--seed", "3")  # fmt: skip


def batches(seed: int, count: int = 2) -> list[np.ndarray]:
    from training.augment import Strength
    from training.robust import augmented_batches

    images = np.stack([mnist_like(index) for index in range(64)])
    targets = np.eye(10, dtype=np.float32)[np.arange(64) % 10]
    stream = augmented_batches(images, targets, 32, seed, Strength())
    return [inputs.numpy() for inputs, _ in stream.take(count)]


def test_augmented_batches_are_flat_pixels_drawn_afresh_and_repeatable() -> None:
    first, second = batches(seed=1)
    again = batches(seed=1)[0]
    other = batches(seed=2)[0]

    assert first.shape == (32, 784) and first.dtype == np.float32
    assert first.min() >= 0.0 and first.max() <= 1.0
    assert np.array_equal(np.rint(first * 255) / 255, first)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert not np.array_equal(first, second)


@pytest.fixture(scope="module")
def robust_run(mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("robust_run")
    capture = root / "stdout.txt"
    with capture.open("w", encoding="utf-8") as stdout, contextlib.redirect_stdout(stdout):
        status = main(["--data-dir", str(mnist_dir), "--output-dir", str(root / "models"),
                       "--work-dir", str(root / "work"), *ROBUST_RUN])  # fmt: skip
    assert status == 0
    return root / "models", capture.read_text(encoding="utf-8")


def test_robust_run_chooses_on_validation_and_reports_robustness(robust_run) -> None:
    output_dir, _ = robust_run
    card = json.loads((output_dir / "mnist_mlp.json").read_text(encoding="utf-8"))
    validation = card["robustness"]["validation"]
    suite = card["robustness"]["test_suite"]
    selected = [row["name"] for row in card["candidates"] if row["selected"]]

    assert [row["name"] for row in card["candidates"]] == ["model_1", "model_3-robust"]
    assert selected == [max(validation, key=lambda name: validation[name]["selection_score"])]
    assert card["architecture"] == selected[0]
    assert card["training"]["robust_epochs"] == 2
    assert card["robustness"]["test_images"] == 300
    assert next(iter(suite["model_3-robust"])) == "clean"
    assert len(suite["model_3-robust"]) == 19
    assert "validation" in card["training"]["selection"]
    assert card["created"].endswith("Z") and card["version"] == "1"
    assert sum(map(sum, card["metrics"]["test_confusion_matrix"])) == 10_000
    assert len(card["metrics"]["per_class_test_accuracy"]) == 10


def test_robust_run_card_puts_the_reproduction_first_and_links_every_plot(robust_run) -> None:
    output_dir, _ = robust_run
    readme = (output_dir / "README.md").read_text(encoding="utf-8")
    plots = sorted(path.name for path in (output_dir / "plots").iterdir())

    headings = [line for line in readme.splitlines() if line.startswith("## ")]
    assert headings[0] == "## The notebook's three models, reproduced"
    assert "## The shipped model: the robust recipe" in headings
    assert "## Robustness" in headings
    assert '## Calibrated confidence and "not a digit"' in headings
    assert "reliability.png" in plots and "digit_score.png" in plots
    assert "confusion_matrix.png" in plots and "misclassified.png" in plots
    assert "model_3-robust_loss.png" in plots
    assert all(f"plots/{name}" in readme for name in plots)


def test_robust_run_prints_a_narrow_table_and_singular_epochs(robust_run) -> None:
    _, printed = robust_run

    assert "== model_1 (1 epoch on 250 images)" in printed
    assert "== model_3 (robust recipe, 2 epochs on 250 images)" in printed
    table = printed[printed.index("\nmodel ") :].split("\n\n")[0].strip().splitlines()
    assert [line.split()[0] for line in table] == ["model", "model_1", "model_3-robust"]
    assert max(len(line) for line in table) <= 100


def test_robust_run_ships_the_weights_it_validated(robust_run) -> None:
    output_dir, _ = robust_run
    card = json.loads((output_dir / "mnist_mlp.json").read_text(encoding="utf-8"))
    record = json.loads((output_dir.parent / "work" / "model_3-robust.json").read_text("utf-8"))
    row = next(row for row in card["candidates"] if row["name"] == "model_3-robust")
    kept = record["kept_epoch"] - 1
    recipe = card["training"]["robust_recipe"]

    assert row["validation_accuracy"] == pytest.approx(record["history"]["val_accuracy"][kept])
    assert card["robustness"]["validation"]["model_3-robust"]["robust_accuracy"] == pytest.approx(
        record["history"]["val_robust_accuracy"][kept]
    )
    assert recipe["weight_average"].startswith("exponential moving average")
    assert recipe["label_smoothing"] > 0
