"""Score ONNX models on MNIST test images as users send them: ``python -m training.robustness``.

Every column transforms each test image (``training.distortions``), then feeds it through the
service's own preprocessing (polarity, and for sizes other than 28x28 crop-to-ink, scale to 20 px,
centre by mass), then through onnxruntime: what a user of the service would get. No TensorFlow.
A lossless array goes straight to the preprocessing's pixel stage (decoding a greyscale PNG of it
gives the same array); JPEG bytes go through the whole upload path, decoder included.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from service.inference.limits import ImageLimits
from service.inference.preprocessing import has_ink, image_to_array, to_model_input
from training.data import load_mnist
from training.distortions import COLUMNS, Column, Upload
from training.errors import TrainingError
from training.negatives import non_digits
from training.splits import validation_start

PROGRAM = "python -m training.robustness"
DEFAULT_SEED = 2003
BATCH_SIZE = 1000
UPLOAD_LIMITS = ImageLimits(max_pixels=25_000_000, max_side=10_000)
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
SCORE_NAME = "digit_score"
DEFAULT_THRESHOLD = 0.5
NON_DIGIT_COLUMN = "non-digits rejected"
NON_DIGITS_PER_KIND = 1_000
NON_DIGIT_SEED = 12


def through_service(upload: Upload) -> np.ndarray:
    """The 28x28 uint8 array the service would give the model for this upload."""
    if isinstance(upload, bytes):
        return image_to_array(upload, "auto", UPLOAD_LIMITS)
    return to_model_input(upload, "auto")


def transformed_inputs(
    images: np.ndarray, seed: int = DEFAULT_SEED, columns: Sequence[Column] = COLUMNS
) -> dict[str, np.ndarray]:
    """Each column's model inputs [N, 28, 28] uint8; column ``i`` draws from seed ``[seed, i]``."""
    inputs = {}
    for index, column in enumerate(columns):
        rng = np.random.default_rng([seed, index])
        inputs[column.name] = np.stack(
            [through_service(column.transform(image, rng)) for image in images]
        )
    return inputs


def accuracies(
    predict: callable, inputs: dict[str, np.ndarray], labels: np.ndarray
) -> dict[str, float]:
    """Accuracy per column of ``predict`` (uint8 [N, 28, 28] -> probabilities [N, 10])."""
    return {
        name: float(np.mean(_digits(predict, images) == labels)) for name, images in inputs.items()
    }


def mean_without_clean(scores: dict[str, float]) -> float:
    """Mean accuracy over the transformed columns (``clean`` left out)."""
    return float(np.mean([value for name, value in scores.items() if name != "clean"]))


def onnx_predictor(path: Path) -> callable:
    """A ``predict`` function running the ONNX model at ``path`` on the CPU."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda images: session.run([OUTPUT_NAME], {INPUT_NAME: images})[0]


def validation_non_digits(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The project's synthetic non-digit validation set (``training.negatives``) cut from the
    validation split's images and labels, as model inputs: every kind, one block each."""
    made = non_digits(images, labels, NON_DIGITS_PER_KIND, NON_DIGIT_SEED)
    return np.concatenate(list(made.values()))


def rejection(score: callable, inputs: np.ndarray, threshold: float) -> float:
    """Share of ``inputs`` the service calls not a digit: no ink, or a score under the threshold."""
    scores = np.concatenate(
        [score(inputs[start : start + BATCH_SIZE]) for start in range(0, len(inputs), BATCH_SIZE)]
    )
    inked = np.array([has_ink(image) for image in inputs])
    return float(np.mean(~inked | (scores < threshold)))


def onnx_scorer(path: Path) -> callable | None:
    """A ``digit_score`` function for the ONNX model at ``path``; None if it has no such output."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    if SCORE_NAME not in [output.name for output in session.get_outputs()]:
        return None
    return lambda images: session.run([SCORE_NAME], {INPUT_NAME: images})[0]


def _digits(predict: callable, images: np.ndarray) -> np.ndarray:
    """Predicted digits, in batches of 1,000 images."""
    return np.concatenate(
        [
            predict(images[start : start + BATCH_SIZE]).argmax(axis=1)
            for start in range(0, len(images), BATCH_SIZE)
        ]
    )


def table(
    scores_by_model: dict[str, dict[str, float]], rejected: dict[str, float | None] | None = None
) -> str:
    """Markdown: one row per column (clean first), one column per model, the mean, then the
    non-digit column (rejection rate; ``-`` for a model without ``digit_score``)."""
    names = list(scores_by_model)
    lines = [
        "| column | " + " | ".join(names) + " |",
        "| --- |" + " ---: |" * len(names),
    ]
    columns = next(iter(scores_by_model.values())) if names else {}
    for column in columns:
        cells = [f"{100 * scores_by_model[name][column]:.2f}%" for name in names]
        lines.append(f"| {column} | " + " | ".join(cells) + " |")
    means = [f"{100 * mean_without_clean(scores_by_model[name]):.2f}%" for name in names]
    lines.append("| mean (without clean) | " + " | ".join(means) + " |")
    if rejected is not None:
        cells = [
            "-" if rejected[name] is None else f"{100 * rejected[name]:.2f}%" for name in names
        ]
        lines.append(f"| {NON_DIGIT_COLUMN} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def shipped_threshold(path: Path) -> float:
    """The ``digit_score`` threshold in the card beside the model (``MODEL.json``), else 0.5."""
    card = path.with_suffix(".json")
    if not card.is_file():
        return DEFAULT_THRESHOLD
    return float(json.loads(card.read_text(encoding="utf-8")).get("digit_score", {}).get(
        "threshold", DEFAULT_THRESHOLD))  # fmt: skip


def non_digit_rejections(paths: list[Path], negatives: np.ndarray) -> dict[str, float | None]:
    """Each model's rejection rate on the non-digit validation set at its card's threshold."""
    rejected = {}
    for path in paths:
        scorer = onnx_scorer(path)
        rejected[str(path)] = (
            None if scorer is None else rejection(scorer, negatives, shipped_threshold(path))
        )
    return rejected


def build_parser() -> argparse.ArgumentParser:
    """Models to score, where MNIST is, how many test images, the seed, an optional JSON file."""
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Accuracy of ONNX models on MNIST's test images under each transformation, "
        "through the service's own preprocessing, and the share of the project's synthetic "
        "non-digits each model rejects at its card's digit_score threshold.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("models", nargs="+", type=Path, metavar="MODEL.onnx")
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("MNIST_DIR") or None,
        help="MNIST directory (IDX files or mnist.npz); default $MNIST_DIR",
    )
    parser.add_argument("--limit", type=int, default=None, help="first N test images only")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the transforms")
    parser.add_argument("--json", type=Path, default=None, help="also write the scores here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Score every model and print the table; 1 on a missing file, 2 on bad arguments."""
    arguments = build_parser().parse_args(argv)
    missing = [path for path in arguments.models if not path.is_file()]
    if missing:
        print(f"{PROGRAM}: error: {missing[0]}: file not found", file=sys.stderr)
        return 1
    try:
        mnist = load_mnist(arguments.data_dir)
        images, labels = mnist.test_images, mnist.test_labels
        if arguments.limit is not None:
            images, labels = images[: arguments.limit], labels[: arguments.limit]
        inputs = transformed_inputs(images, arguments.seed)
        scores = {
            str(path): accuracies(onnx_predictor(path), inputs, labels) for path in arguments.models
        }
        start = validation_start(len(mnist.train_images))
        negatives = validation_non_digits(mnist.train_images[start:], mnist.train_labels[start:])
        rejected = non_digit_rejections(arguments.models, negatives)
    except (TrainingError, OSError, ValueError, RuntimeError) as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 1
    print(
        f"{len(labels):,} MNIST test images, seed {arguments.seed}; {len(negatives):,} synthetic "
        f"non-digits (validation set, seed {NON_DIGIT_SEED})\n\n{table(scores, rejected)}"
    )
    if arguments.json is not None:
        results = {name: {**scores[name], NON_DIGIT_COLUMN: rejected[name]} for name in scores}
        arguments.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
