"""Why the notebook's models 1 and 2 scored 66.46% and 46.70%: ``python -m training.study``.

Every loss the notebook prints equals 16.118 x (1 - accuracy). That is Keras 2's cross-entropy on
saturated predictions: it clipped probabilities to [1e-7, 1 - 1e-7] (-ln 1e-7 = 16.118) and a
clipped wrong prediction gets no gradient. This trains models 1 and 2 with the notebook's settings
under both readings of its truncated initialiser lines, with Keras 2's clipped loss and with
Keras 3's, keeps each model's last epoch as the notebook did, and writes what it measured as JSON
for the model card. Nothing trained here is exported or shipped.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from training.architectures import (
    INITIALISER_READINGS,
    WIDE_EVERYWHERE,
    get_architecture,
    with_reading,
)
from training.data import load_mnist
from training.errors import TrainingError
from training.losses import KERAS2_CLIPPED_LOSS, KERAS2_EPSILON, KERAS3_LOSS, LOSSES
from training.quiet import without_native_logs
from training.text import count

PROGRAM = "python -m training.study"
MODELS = ("model_1", "model_2")
SATURATED_LOSS = -math.log(KERAS2_EPSILON)
SIGNATURE_TOLERANCE = 0.02
DEFAULT_OUTPUT = Path("models") / "notebook_study.json"
NOTEBOOK_FIRST_EPOCH = {
    "model_1": {"val_loss": 9.8416, "val_accuracy": 0.3886},
    "model_2": {"val_loss": 12.637, "val_accuracy": 0.2158},
}
GRID_SEED = 42


def loss_per_error(loss: float, accuracy: float) -> float | None:
    """loss / (1 - accuracy): 16.118 when every prediction is saturated; None at 100%."""
    return loss / (1.0 - accuracy) if accuracy < 1.0 else None


def has_signature(loss: float, accuracy: float) -> bool:
    """Whether ``loss`` is 16.118 x error within 2% (what the notebook's printed losses show)."""
    ratio = loss_per_error(loss, accuracy)
    return ratio is not None and abs(ratio / SATURATED_LOSS - 1.0) <= SIGNATURE_TOLERANCE


def study_row(
    name: str, reading: str, loss: str, history: dict, test_accuracy: float, test_loss: float
) -> dict[str, object]:
    """What one run shows: accuracies, and the loss-per-error ratio at every epoch and on test."""
    ratios = [
        loss_per_error(value, accuracy)
        for value, accuracy in zip(history["val_loss"], history["val_accuracy"], strict=True)
    ]
    signature_epochs = sum(
        has_signature(value, accuracy)
        for value, accuracy in zip(history["val_loss"], history["val_accuracy"], strict=True)
    )
    return {
        "model": name,
        "reading": reading,
        "loss": loss,
        "first_epoch": {
            "val_loss": history["val_loss"][0],
            "val_accuracy": history["val_accuracy"][0],
        },
        "final_train_accuracy": history["accuracy"][-1],
        "final_validation_accuracy": history["val_accuracy"][-1],
        "test_accuracy": test_accuracy,
        "test_loss": test_loss,
        "validation_loss_per_error": [None if r is None else round(r, 3) for r in ratios],
        "epochs_with_signature": signature_epochs,
        "epochs": len(ratios),
        "test_has_signature": has_signature(test_loss, test_accuracy),
    }


def run_study(
    data_dir: str | None,
    epochs: int,
    limit: int | None,
    spread_seeds: Sequence[int] = (),
    done: Sequence[dict] = (),
) -> dict[str, object]:
    """The eight runs (2 models x 2 readings x 2 losses, seed 42), then the wide-everywhere +
    clipped runs again with each of ``spread_seeds``; runs already in ``done`` are kept, not rerun.
    """
    mnist = load_mnist(data_dir)
    from training import fit
    from training.splits import prepare_splits

    fit.enable_determinism()
    splits = prepare_splits(mnist, limit)
    plan = [
        (name, reading, loss, GRID_SEED)
        for reading in INITIALISER_READINGS
        for loss in (KERAS2_CLIPPED_LOSS, KERAS3_LOSS)
        for name in MODELS
    ] + [
        (name, WIDE_EVERYWHERE, KERAS2_CLIPPED_LOSS, seed)
        for seed in spread_seeds
        for name in MODELS
    ]
    finished = {_key(row): row for row in done}
    rows = []
    for name, reading, loss, seed in plan:
        if (name, reading, loss, seed) in finished:
            rows.append(finished[(name, reading, loss, seed)])
            continue
        print(
            f"== {name}, initialisers {reading}, loss {loss}, seed {seed}: {count(epochs, 'epoch')}"
        )
        settings = fit.Settings(epochs, 128, seed, limit, loss=loss, init_reading=reading)
        architecture = with_reading(get_architecture(name), reading)
        trained = fit.train(architecture, splits, settings, keep_best_epoch=False)
        test, _ = fit.score(trained.model, splits.test)
        row = study_row(name, reading, loss, trained.history, test.accuracy, test.loss)
        rows.append({**row, "seed": seed})
    return {
        "settings": {"epochs": epochs, "batch_size": 128, "seed": GRID_SEED, "limit": limit},
        "split": splits.describe(),
        "readings": INITIALISER_READINGS,
        "losses": LOSSES,
        "saturated_loss": SATURATED_LOSS,
        "notebook_first_epoch": NOTEBOOK_FIRST_EPOCH,
        "notebook": {
            name: {
                "train_accuracy": get_architecture(name).notebook.train_accuracy,
                "test_accuracy": get_architecture(name).notebook.test_accuracy,
            }
            for name in MODELS
        },
        "runs": rows,
    }


def _key(row: dict) -> tuple[str, str, str, int]:
    """What identifies a run: model, reading, loss and seed (42 in files without seeds)."""
    return (row["model"], row["reading"], row["loss"], row.get("seed", GRID_SEED))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the study and write its JSON; 1 on a data error, 2 on bad arguments."""
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Train the notebook's models 1 and 2 under both initialiser readings with "
        "Keras 2's clipped and Keras 3's cross-entropy; write what the losses show.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--data-dir", default=os.environ.get("MNIST_DIR") or None)
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="JSON to write; runs it already holds (same settings) are kept, not trained again",
    )
    parser.add_argument("--epochs", type=int, default=20, help="the notebook's 20")
    parser.add_argument("--limit", type=int, default=None, help="first N training images only")
    parser.add_argument(
        "--spread-seeds",
        type=int,
        nargs="*",
        default=[],
        help="also train wide-everywhere + keras2-clipped with these seeds (the seed spread)",
    )
    arguments = parser.parse_args(argv)
    done = []
    if arguments.output.is_file():
        earlier = json.loads(arguments.output.read_text(encoding="utf-8"))
        same = earlier["settings"]["epochs"] == arguments.epochs
        done = earlier["runs"] if same and earlier["settings"]["limit"] == arguments.limit else []
    try:
        with without_native_logs():
            study = run_study(
                arguments.data_dir, arguments.epochs, arguments.limit, arguments.spread_seeds, done
            )
    except (TrainingError, ValueError, OSError) as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 1
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(json.dumps(study, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {arguments.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
