"""``python -m training.calibrate models/mnist_mlp.onnx``: the trust stage on an exported model.

Fits the temperature and the ``digit_score`` head (``training.trust``) on MNIST's training and
validation images, measures the result once on the test set and the robustness suite, and
rewrites the model, its card, its int8 twin and the human card's section in place, as new
versions (``--version``). Running it again on a model it already edited starts from the exported
graph (the edits are removed first).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from training.calibration import expected_calibration_error
from training.card import next_version, write_atomically
from training.cli import DefaultsHelpFormatter, add_version_argument
from training.data import load_mnist
from training.errors import TrainingError
from training.graph import without_edits
from training.readme import not_for_section, rebuild_section, replace_summary
from training.robustness import onnx_predictor, onnx_scorer, rejection, transformed_inputs
from training.splits import Splits, prepare_splits
from training.trust import Trust, calibrate, check_parity
from training.trust_report import (
    SECTION_TITLE,
    int8_bytes,
    int8_card,
    readme_section,
    replace_section,
    updated_card,
    write_plots,
)

PROGRAM = "python -m training.calibrate"
INT8_NAME = "{stem}.int8.onnx"
EVALUATION_BATCH = 1000


def finish(
    card: dict,
    onnx_bytes: bytes,
    splits: Splits,
    created: datetime,
    suite: dict[str, np.ndarray] | None = None,
    applied: str = "in the training run, right after export",
) -> tuple[dict, Trust]:
    """Fit, check and measure; returns the updated card and the fitted stage (nothing written).

    ``applied`` says when the stage ran, for the card: in the run, or later on its export."""
    original = without_edits(onnx_bytes)
    trust = calibrate(original, splits, suite)
    parity = check_parity(trust, original, splits.test_images)
    updated = updated_card(card, trust, parity, created)
    updated["calibration"]["applied"] = applied
    if "robustness" in updated:
        updated["robustness"]["non_digit_rejection"] = trust.digit_score["non_digit_rejection"]
    return updated, trust


def write(card: dict, trust: Trust, output_dir: Path, splits: Splits, stem: str) -> list[Path]:
    """The model, its card, the int8 twin and its card, the plots; returns what was written."""
    model_path = output_dir / f"{stem}.onnx"
    write_atomically(model_path, trust.onnx_bytes)
    write_atomically(model_path.with_suffix(".json"), _json(card))
    written = [model_path, model_path.with_suffix(".json")]
    with tempfile.TemporaryDirectory() as work:
        quantised = int8_bytes(model_path, Path(work) / "int8.onnx")
        int8_path = output_dir / INT8_NAME.format(stem=stem)
        write_atomically(int8_path, quantised)
        metrics = int8_metrics(int8_path, card, splits)
        write_atomically(int8_path.with_suffix(".json"), _json(int8_card(card, quantised, metrics)))
    written += [int8_path, int8_path.with_suffix(".json")]
    return written + write_plots(trust, output_dir / "plots")


def int8_metrics(path: Path, card: dict, splits: Splits) -> dict:
    """The int8 model on the test set, in batches of 1,000 (dynamic quantisation is per call)."""
    predict, score = onnx_predictor(path), onnx_scorer(path)
    images, labels = splits.test_images, splits.test.labels
    probabilities = np.concatenate(
        [
            predict(images[start : start + EVALUATION_BATCH])
            for start in range(0, len(images), EVALUATION_BATCH)
        ]
    )
    fp32 = onnx_predictor(path.with_name(path.name.replace(".int8", "")))(images).argmax(axis=1)
    threshold = card["digit_score"]["threshold"]
    return {
        "test_accuracy": float(np.mean(probabilities.argmax(axis=1) == labels)),
        "fp32_test_accuracy": card["metrics"]["test_accuracy"],
        "same_digit_as_fp32": float(np.mean(probabilities.argmax(axis=1) == fp32)),
        "test_ece": expected_calibration_error(probabilities, labels),
        "test_digits_accepted": 1.0 - rejection(score, images, threshold),
    }


def _json(card: dict) -> bytes:
    return (json.dumps(card, indent=2) + "\n").encode()


def update_readme(readme: str, old_card: dict, card: dict) -> str:
    """The human card with the new identity (the summary, rendered again) and the trust section
    (rendered from the card)."""
    text = replace_summary(readme.replace(old_card["sha256"], card["sha256"]), card)
    text = replace_section(text, SECTION_TITLE, readme_section(card), "## Intended use")
    text = replace_section(text, "## Not for", not_for_section(card), "## Training")
    return replace_section(text, "## Rebuild", rebuild_section(card), "## Rebuild")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Calibrate an exported model (temperature in the graph) and add its "
        "digit_score output; rewrites the model, its cards, its int8 twin and plots in place.",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("model", type=Path, metavar="MODEL.onnx")
    add_version_argument(parser, "MODEL.onnx's folder")
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("MNIST_DIR") or None,
        help="MNIST directory (IDX files or mnist.npz); default $MNIST_DIR",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stage on one model; 1 on a missing file or a failed check."""
    arguments = build_parser().parse_args(argv)
    model = arguments.model
    if not model.is_file() or not model.with_suffix(".json").is_file():
        print(f"{PROGRAM}: error: {model} or its card: file not found", file=sys.stderr)
        return 1
    try:
        old_card = json.loads(model.with_suffix(".json").read_text(encoding="utf-8"))
        splits = prepare_splits(load_mnist(arguments.data_dir), old_card["training"]["limit"])
        suite = transformed_inputs(splits.test_images)
        created = datetime.now(UTC).replace(microsecond=0)
        applied = (
            f"later, with `{PROGRAM} {model.name}`, on the model the training run exported "
            f"(created {old_card.get('calibration', {}).get('exported', old_card['created'])}); "
            "the dense layers are that run's, unchanged"
        )
        version = arguments.version or next_version(model.parent)
        renumbered = {**old_card, "version": str(version)}
        card, trust = finish(renumbered, model.read_bytes(), splits, created, suite, applied)
        card["calibration"]["exported"] = old_card.get("calibration", {}).get(
            "exported", old_card["created"]
        )
        written = write(card, trust, model.parent, splits, model.stem)
        readme = model.parent / "README.md"
        if readme.is_file():
            text = update_readme(readme.read_text(encoding="utf-8"), old_card, card)
            write_atomically(readme, text.encode())
            written.append(readme)
    except (TrainingError, OSError, ValueError, RuntimeError, KeyError) as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 1
    print(summary(card))
    print("wrote " + ", ".join(str(path) for path in written))
    return 0


def summary(card: dict) -> str:
    """Three lines for the terminal: T, ECE on test before/after, threshold and rejection."""
    figures = card["calibration"]["figures"]["test"]
    return (
        f"temperature {card['calibration']['temperature']:g}; test ECE "
        f"{100 * figures['before']['ece']:.2f}% -> {100 * figures['after']['ece']:.2f}%\n"
        f"digit_score threshold {card['digit_score']['threshold']:g}: test digits accepted "
        f"{100 * card['digit_score']['test']['clean_digits_accepted']:.2f}%, synthetic "
        f"non-digits rejected {100 * card['digit_score']['non_digit_rejection']:.2f}%"
    )


if __name__ == "__main__":
    raise SystemExit(main())
