"""Command line: ``python -m training`` / ``mnist-mlp-train``.

Arguments and data are checked before TensorFlow is imported, so mistakes are reported at once,
as one line on stderr with a non-zero exit status.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from service.inference.model_card import LARGEST_VERSION
from training.architectures import ARCHITECTURES, INITIALISER_READINGS, NARROW_FIRST
from training.data import load_mnist
from training.errors import TrainingError
from training.losses import KERAS3_LOSS, LOSSES
from training.quiet import without_native_logs
from training.splits import MINIMUM_LIMIT

if TYPE_CHECKING:
    from training.pipeline import Summary

PROGRAM = "mnist-mlp-train"
# Each run gets a new folder here (git-ignored): a quick run never replaces the shipped model.
RUNS_DIR = "runs"
SHIPPED_DIR = "models"
DEFAULT_WORK_DIR = "work"
DEFAULT_EPOCHS = 20
DEFAULT_ROBUST_EPOCHS = 160
DEFAULT_ROBUST_MODELS = ("model_3",)
RECIPES = ("notebook", "robust")
DEFAULT_BATCH_SIZE = 128
DEFAULT_SEED = 42
USAGE_ERROR = 2
RUN_ERROR = 1


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every default in ``--help``, except ``None``: those options say what unset means."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage block), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer no smaller than ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def version_number(text: str) -> int:
    """An argparse type: a model version, 1 or more, that leaves room for the int8 twin's (the
    next one) under Triton's int64 limit."""
    version = at_least(1)(text)
    if version >= LARGEST_VERSION:
        raise argparse.ArgumentTypeError(f"must be less than {LARGEST_VERSION}, got {version}")
    return version


def add_version_argument(parser: argparse.ArgumentParser, folder: str) -> None:
    """``--version``: the fp32 model's version; its int8 twin gets the next."""
    parser.add_argument(
        "--version",
        type=version_number,
        default=None,
        help="the model's version, a positive integer as Triton names versions; the int8 model "
        "gets the next (default: one more than the highest version of the model among the "
        f"cards in {folder}, 1 if none)",
    )


def build_parser() -> argparse.ArgumentParser:
    """All flags, with their defaults shown in ``--help``."""
    parser = OneLineParser(
        prog=PROGRAM,
        description="Train the notebook's three Keras MLPs on MNIST, report them, and export the "
        "best (on validation) to ONNX with its model cards.",
        formatter_class=DefaultsHelpFormatter,
    )
    _add_location_arguments(parser)
    _add_training_arguments(parser)
    _add_recipe_arguments(parser)
    return parser


def _add_location_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the data is read from and the results are written to."""
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("MNIST_DIR") or None,
        help="directory with the four MNIST IDX files (gzip or raw) or mnist.npz; "
        "default $MNIST_DIR; if neither, Keras downloads MNIST",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        help=f"where the ONNX model, its cards and plots go: a model repository that "
        f"MNIST_MODEL_REPOSITORY can serve (default: a new folder {RUNS_DIR}/<UTC date-time>; "
        f"--output-dir {SHIPPED_DIR} replaces the shipped model)",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path(DEFAULT_WORK_DIR),
        help="where trained .keras models go (not committed)",
    )
    add_version_argument(parser, "--output-dir")


def _add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """Which recipe, and the notebook study's switches (loss, initialiser reading)."""
    parser.add_argument(
        "--recipe",
        choices=RECIPES,
        default="notebook",
        help="notebook: the three models exactly as the notebook trains them, the best on "
        "validation exported; robust: those three, then --robust-models on augmented images "
        "with a decaying learning rate, the best on clean + robustness validation exported",
    )
    parser.add_argument(
        "--robust-models",
        nargs="+",
        choices=list(ARCHITECTURES),
        default=list(DEFAULT_ROBUST_MODELS),
        metavar="MODEL",
        help="architectures the robust recipe trains",
    )
    parser.add_argument(
        "--robust-epochs",
        type=at_least(1),
        default=DEFAULT_ROBUST_EPOCHS,
        help="epochs of each robust-recipe model",
    )
    parser.add_argument(
        "--loss",
        choices=list(LOSSES),
        default=KERAS3_LOSS,
        help="keras3: Keras 3's cross-entropy; keras2-clipped: Keras 2's, which clipped "
        "probabilities to [1e-7, 1 - 1e-7] (the notebook's)",
    )
    parser.add_argument(
        "--init-reading",
        choices=list(INITIALISER_READINGS),
        default=NARROW_FIRST,
        help="reading of the notebook's truncated initialiser lines for models 1 and 2: "
        + "; ".join(f"{name}: {text}" for name, text in INITIALISER_READINGS.items()),
    )


def _add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """What to train, how long, and whether to train at all."""
    parser.add_argument(
        "--epochs", type=at_least(1), default=DEFAULT_EPOCHS, help="training epochs per model"
    )
    parser.add_argument(
        "--batch-size", type=at_least(1), default=DEFAULT_BATCH_SIZE, help="mini-batch size"
    )
    parser.add_argument(
        "--models",
        nargs="+",
        choices=list(ARCHITECTURES),
        default=list(ARCHITECTURES),
        metavar="MODEL",
        help=f"models to train, among {', '.join(ARCHITECTURES)}",
    )
    parser.add_argument(
        "--seed",
        type=at_least(0),
        default=DEFAULT_SEED,
        help="random seed; the same seed on the same machine repeats a run",
    )
    parser.add_argument(
        "--limit",
        type=at_least(MINIMUM_LIMIT),
        default=None,
        help=f"use only the first N training images, N at least {MINIMUM_LIMIT} (quick runs; "
        "the robustness suite then uses the first N test images)",
    )
    parser.add_argument(
        "--export-only",
        action="store_true",
        help="skip training: reload the models saved in --work-dir and export",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run everything; returns the exit status (0, 1 for a failed run, 2 for bad arguments)."""
    arguments = build_parser().parse_args(argv)
    with without_native_logs():
        return _run(arguments)


def fresh_run_dir(runs_dir: Path, now: datetime | None = None) -> Path:
    """``runs/20261206-053012``: a folder no earlier run wrote (``-2``, ``-3``... on a clash)."""
    stamp = f"{(now or datetime.now(UTC)):%Y%m%d-%H%M%S}"
    candidate, attempt = runs_dir / stamp, 1
    while candidate.exists():
        attempt += 1
        candidate = runs_dir / f"{stamp}-{attempt}"
    return candidate


def _announce_output(output_dir: Path, model_file: str, version: int) -> None:
    """Say where the run writes, and loudly when it replaces a model already there."""
    existing = output_dir / model_file
    if existing.exists():
        print(f"This run replaces {existing} and its cards when it ends.")
    else:
        print(f"This run writes its model into {output_dir}/ when it ends.")
    print(f"It writes version {version} of the model (int8: version {version + 1}).")


def _run(arguments: argparse.Namespace) -> int:
    """Load, train or reload, export and report; errors become one line on stderr."""
    output_dir = arguments.output_dir or fresh_run_dir(Path(RUNS_DIR))
    try:
        mnist = load_mnist(arguments.data_dir)
        from training.card import next_version
        from training.pipeline import MODEL_STEM, Request, Settings, run

        version = arguments.version or next_version(output_dir)
        _announce_output(output_dir, f"{MODEL_STEM}.onnx", version)

        request = Request(
            model_names=tuple(dict.fromkeys(arguments.models)),
            settings=Settings(
                arguments.epochs,
                arguments.batch_size,
                arguments.seed,
                arguments.limit,
                recipe=arguments.recipe,
                robust_epochs=arguments.robust_epochs if arguments.recipe == "robust" else 0,
                robust_models=tuple(dict.fromkeys(arguments.robust_models))
                if arguments.recipe == "robust"
                else (),
                loss=arguments.loss,
                init_reading=arguments.init_reading,
            ),
            output_dir=output_dir,
            work_dir=arguments.work_dir,
            export_only=arguments.export_only,
            version=version,
        )
        summary = run(request, mnist)
    except (TrainingError, ValueError, OSError) as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return RUN_ERROR
    print_summary(summary)
    print_next_steps(output_dir)
    return 0


def print_summary(summary: Summary) -> None:
    """The table, the observations and what was written."""
    card = summary.card
    test_accuracy = card["metrics"]["test_accuracy"]
    print(f"\n{summary.table}\n")
    for line in summary.observations:
        print(f"- {line}")
    print(
        f"\nExported {card['architecture']}: test accuracy {100 * test_accuracy:.2f}%, "
        f"ONNX vs Keras max |difference| {card['parity']['max_abs_difference']:.3g}, "
        f"sha256 {card['sha256']}"
    )
    for path in summary.written:
        print(f"wrote {path}")


def print_next_steps(output_dir: Path) -> None:
    """How to use what the run wrote: serve it, classify files with it."""
    print(
        f"\nServe this model: MNIST_MODEL_REPOSITORY={output_dir} mnist-mlp-serve\n"
        f"Classify images with it: mnist-mlp predict --model-repository {output_dir} FILE..."
    )
