"""What every benchmark script's ``main`` starts with: its arguments and its workspace."""

import argparse
import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from benchmarks.data import benchmark_model


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model`` and ``--quick``, the same in every script."""
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="ONNX model with its card beside it (default: the shipped models/mnist_mlp.onnx, "
        "or a stand-in MLP 784-512-128-10 with random weights while it is not built)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a tiny run that only proves the script works"
    )


def parser_for(description: str) -> argparse.ArgumentParser:
    """An argument parser that shows every default in ``--help``."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    add_common_arguments(parser)
    return parser


@contextlib.contextmanager
def workspace(requested_model: Path | None) -> Iterator[tuple[Path, Path, contextlib.ExitStack]]:
    """A temporary folder, the model to measure, and an exit stack for the servers started."""
    with (
        tempfile.TemporaryDirectory(prefix="mnist-bench-") as work,
        contextlib.ExitStack() as stack,
    ):
        workdir = Path(work)
        yield workdir, benchmark_model(requested_model, workdir), stack
