"""``mnist-mlp predict FILE|DIR ...``: classify image files with the service's core, no server.

The model comes from the same repository, in the same versions, through the same settings
(``MNIST_*`` variables, flags winning) as ``mnist-mlp-serve``; each file goes through the same
preprocessing as ``POST /predict``, so both give the same answer for the same file.
"""

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from service.inference.errors import ServiceError
from service.inference.model_card import ModelLoadError, version_problem
from service.inference.repository import open_repository
from service.offline.classify import FileClassifier, Outcome
from service.offline.files import expand
from service.offline.output import render
from service.offline.progress import ProgressBar
from service.settings import Settings
from service.settings_reader import InvalidSettings, read_settings

PROGRAM = "mnist-mlp"
FAILED = 1
USAGE_ERROR = 2
INTERRUPTED = 130
# Flags that are service settings, under the settings' own names.
SETTING_FLAGS = ("model_repository", "model_path", "max_batch_size")


class OneLineParser(argparse.ArgumentParser):
    """Argument errors in one line on stderr, exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def model_version(text: str) -> str:
    """An argparse type: a version as the cards name them, a positive integer (``is_version``)."""
    problem = version_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return text


def build_parser() -> argparse.ArgumentParser:
    """``mnist-mlp`` and its ``predict`` command, every default in the help."""
    parser = OneLineParser(
        prog=PROGRAM, description="Classify images of handwritten digits without a server."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    predict = commands.add_parser(
        "predict",
        help="classify image files, or every image in folders",
        description="Classify image files (PNG, JPEG, GIF, BMP, TIFF, WebP) and every image in "
        "the folders named (subfolders too) with the model the service serves, through the "
        "service's preprocessing. A file that cannot be classified is named on stderr, the "
        "others still are, and the exit status is 1. Every MNIST_* setting of the service "
        "applies; the flags below win over it.",
    )
    _add_predict_arguments(predict)
    return parser


def _add_predict_arguments(predict: argparse.ArgumentParser) -> None:
    defaults = Settings.model_fields
    predict.add_argument(
        "inputs",
        nargs="+",
        type=Path,
        metavar="FILE|DIR",
        help="an image file (any name: the format is read from its bytes), or a folder",
    )
    form = predict.add_mutually_exclusive_group()
    form.add_argument(
        "--json", dest="form", action="store_const", const="json", help="JSON, as POST /predict"
    )
    form.add_argument(
        "--csv", dest="form", action="store_const", const="csv", help="CSV, a row per file"
    )
    predict.set_defaults(form="table")
    predict.add_argument(
        "--model-repository",
        type=Path,
        metavar="DIR",
        help="folder of ONNX models with their cards, as the service reads it "
        "(default: $MNIST_MODEL_REPOSITORY, else the shipped models/)",
    )
    predict.add_argument(
        "--model-path",
        type=Path,
        metavar="FILE",
        help="one ONNX file (its card beside it) instead of the repository "
        "(default: $MNIST_MODEL_PATH, unset)",
    )
    predict.add_argument(
        "--model-name", help="the repository's model to use (default: its default model)"
    )
    predict.add_argument(
        "--model-version",
        type=model_version,
        help="the model's version to use, a positive integer (default: its default version)",
    )
    predict.add_argument(
        "--max-batch-size",
        type=int,
        metavar="N",
        help="most images in one model call (default: $MNIST_MAX_BATCH_SIZE, else "
        f"{defaults['max_batch_size'].default})",
    )
    predict.add_argument(
        "--invert",
        choices=("auto", "true", "false"),
        default="auto",
        help="auto inverts images whose border is light (dark ink on paper); true or false "
        "forces it (default: %(default)s)",
    )
    predict.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        help="a progress bar on stderr (default: shown when a folder is given and stderr is "
        "a terminal)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; 0 when every file was classified, 1 when one was not (or the model
    cannot load), 2 for bad arguments or settings."""
    arguments = build_parser().parse_args(argv)
    try:
        return predict(arguments)
    except KeyboardInterrupt:
        print(f"\n{PROGRAM} predict: interrupted", file=sys.stderr)
        return INTERRUPTED


def predict(arguments: argparse.Namespace) -> int:
    """Load the model, classify every input in order, print them all."""
    overrides = {
        name: getattr(arguments, name)
        for name in SETTING_FLAGS
        if getattr(arguments, name) is not None
    }
    if arguments.model_repository is not None and arguments.model_path is None:
        # The folder asked for, even where MNIST_MODEL_PATH (which wins over it) is set.
        overrides["model_path"] = None
    try:
        settings = read_settings(**overrides)
    except InvalidSettings as error:
        return _fail(f"invalid setting: {error}", USAGE_ERROR)
    try:
        classifier = open_repository(settings).get(arguments.model_name, arguments.model_version)
    except ModelLoadError as error:
        return _fail(str(error), FAILED)
    except ServiceError as error:
        return _fail(error.message, USAGE_ERROR)
    files = FileClassifier(classifier, settings, arguments.invert)
    outcomes = _classify_all(files, arguments)
    card = classifier.card
    model = {"name": card.name, "version": card.version}
    if not _write(render(outcomes, model, arguments.form)):
        return FAILED
    failed = sum(outcome.error is not None for outcome in outcomes)
    _summarise(len(outcomes), failed, model, classifier.model_path)
    return FAILED if failed else 0


def _classify_all(files: FileClassifier, arguments: argparse.Namespace) -> list[Outcome]:
    """Each input's outcome; an error is printed (above the bar) as soon as it is known."""
    inputs = expand(arguments.inputs)
    show = arguments.progress
    if show is None:
        show = sys.stderr.isatty() and any(name.is_dir() for name in arguments.inputs)
    bar = ProgressBar(len(inputs), sys.stderr, enabled=show)
    outcomes = []
    try:
        for outcome in files.classify(inputs, bar.advance):
            if outcome.error is not None:
                bar.note(f"{PROGRAM} predict: {outcome.file}: {outcome.error}")
            outcomes.append(outcome)
    finally:
        bar.close()
    return outcomes


def _write(text: str) -> bool:
    """Print to stdout; False when its reader has gone (``| head``), which is no traceback."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes stdout again at exit: point it at nothing first.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return False
    return True


def _summarise(total: int, failed: int, model: dict[str, str], model_path: Path) -> None:
    """One line on stderr: how many files, and which model version answered."""
    files = "file" if total == 1 else "files"
    classified = f"{total - failed} of {total} {files}" if failed else f"{total} {files}"
    print(
        f"{PROGRAM} predict: {classified} classified by {model['name']} version "
        f"{model['version']} ({model_path})",
        file=sys.stderr,
    )


def _fail(message: str, status: int) -> int:
    print(f"{PROGRAM} predict: {message}", file=sys.stderr)
    return status
