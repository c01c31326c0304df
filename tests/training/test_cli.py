"""The command line refuses bad arguments and missing data with one line and a non-zero exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.training.idx_writer import IDX_NAMES, write_tiny_mnist

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def run_cli(
    *arguments: str, mnist_dir: str | None = None, cwd: Path = PROJECT_ROOT, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m training`` in a fresh interpreter, as a user would run it (from ``cwd``)."""
    environment = {key: value for key, value in os.environ.items() if key != "MNIST_DIR"}
    environment["PYTHONPATH"] = str(PROJECT_ROOT)
    if mnist_dir is not None:
        environment["MNIST_DIR"] = mnist_dir
    return subprocess.run(
        [sys.executable, "-m", "training", *arguments],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], status: int, text: str) -> None:
    """Exit status, a single stderr line holding ``text``, and no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == status, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mnist-mlp-train: error: ")
    assert text in lines[0]


@pytest.mark.parametrize(
    ("arguments", "text"),
    [
        (["--models", "model_9"], "invalid choice: 'model_9'"),
        (["--epochs", "0"], "argument --epochs: must be at least 1, got 0"),
        (["--epochs", "ten"], "argument --epochs: 'ten' is not an integer"),
        (["--batch-size", "-4"], "argument --batch-size: must be at least 1, got -4"),
        (["--limit", "10"], "argument --limit: must be at least 100, got 10"),
        (["--seed", "-1"], "argument --seed: must be at least 0, got -1"),
        (["--recipe", "fast"], "argument --recipe: invalid choice: 'fast'"),
        (["--loss", "mse"], "argument --loss: invalid choice: 'mse'"),
        (["--robust-epochs", "0"], "argument --robust-epochs: must be at least 1, got 0"),
        (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    ],
    ids=["unknown-model", "zero-epochs", "epochs-text", "negative-batch", "tiny-limit", "seed",
         "recipe", "loss", "robust-epochs", "unknown-flag"],
)  # fmt: skip
def test_bad_arguments(arguments: list[str], text: str) -> None:
    assert_one_line_error(run_cli(*arguments), status=2, text=text)


def test_a_directory_without_mnist(tmp_path: Path) -> None:
    result = run_cli("--data-dir", str(tmp_path))

    assert_one_line_error(result, status=1, text=f"{tmp_path}: no MNIST here")


def test_a_missing_directory(tmp_path: Path) -> None:
    result = run_cli("--data-dir", str(tmp_path / "absent"))

    assert_one_line_error(result, status=1, text="absent: no such directory")


def test_mnist_dir_environment_variable_is_the_default(tmp_path: Path) -> None:
    result = run_cli(mnist_dir=str(tmp_path))

    assert_one_line_error(result, status=1, text=f"{tmp_path}: no MNIST here")


def test_a_truncated_file_is_named(tmp_path: Path) -> None:
    write_tiny_mnist(tmp_path)
    path = tmp_path / f"{IDX_NAMES['train_images']}.gz"
    path.write_bytes(path.read_bytes()[:40])

    result = run_cli("--data-dir", str(tmp_path))

    assert_one_line_error(result, status=1, text=f"{path}: corrupt gzip stream")


def test_help_shows_the_defaults() -> None:
    result = run_cli("--help")

    assert result.returncode == 0
    for default in ("(default: 20)", "(default: 128)", "(default: work)",
                    "(default: 42)", "(default: ['model_1', 'model_2', 'model_3'])",
                    "(default: notebook)", "(default: keras3)", "(default: narrow-first)",
                    "at least 100"):  # fmt: skip
        assert default in " ".join(result.stdout.split())
