"""A training run writes a fresh folder the service can serve; only ``--output-dir`` names the
shipped model's folder, and then the run says it replaces it. Progress: one line per epoch."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.inference.repository import ModelRepository
from tests.training.test_cli import run_cli
from training.cli import fresh_run_dir

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHIPPED = PROJECT_ROOT / "models"
QUICK_RUN = ("--limit", "100", "--epochs", "2", "--models", "model_1", "--seed", "3")


def train(cwd: Path, *arguments: str, mnist_dir: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m training`` in ``cwd``, as a user runs it from their own folder."""
    return run_cli(*arguments, mnist_dir=mnist_dir and str(mnist_dir), cwd=cwd, timeout=600)


def test_a_run_gets_a_new_folder_named_by_its_time(tmp_path: Path) -> None:
    moment = datetime(2026, 12, 6, 5, 30, 12, tzinfo=UTC)
    first = fresh_run_dir(tmp_path / "runs", moment)
    assert first == tmp_path / "runs" / "20261206-053012"
    first.mkdir(parents=True)
    second = fresh_run_dir(tmp_path / "runs", moment)
    assert second == tmp_path / "runs" / "20261206-053012-2"
    second.mkdir()
    assert fresh_run_dir(tmp_path / "runs", moment).name == "20261206-053012-3"


def test_help_says_where_runs_go() -> None:
    result = train(PROJECT_ROOT, "--help")

    text = " ".join(result.stdout.split())
    assert result.returncode == 0
    assert "(default: a new folder runs/<UTC date-time>;" in text
    assert "replaces the shipped model" in text
    assert "(default: None)" not in text


def test_runs_are_git_ignored() -> None:
    assert "runs/" in (PROJECT_ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()


@dataclass(frozen=True)
class QuickRun:
    cwd: Path
    result: subprocess.CompletedProcess
    folder: Path


@pytest.fixture(scope="module")
def quick_run(mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> QuickRun:
    """One real run (model_1, 2 epochs, 100 images) with no --output-dir, from a user's folder."""
    cwd = tmp_path_factory.mktemp("user")
    result = train(cwd, *QUICK_RUN, mnist_dir=mnist_dir)
    assert result.returncode == 0, result.stderr
    folders = list((cwd / "runs").iterdir())
    assert len(folders) == 1, folders
    return QuickRun(cwd, result, folders[0])


@pytest.mark.slow
def test_a_run_without_output_dir_writes_a_fresh_folder(quick_run: QuickRun) -> None:
    assert re.fullmatch(r"\d{8}-\d{6}", quick_run.folder.name)
    assert {"mnist_mlp.onnx", "mnist_mlp.json", "README.md", "plots"} <= {
        path.name for path in quick_run.folder.iterdir()
    }
    assert not (quick_run.cwd / "models").exists()
    relative = f"runs/{quick_run.folder.name}"
    assert f"This run writes its model into {relative}/ when it ends." in quick_run.result.stdout
    assert f"MNIST_MODEL_REPOSITORY={relative} mnist-mlp-serve" in quick_run.result.stdout


@pytest.mark.slow
def test_the_run_folder_is_a_model_repository(quick_run: QuickRun) -> None:
    repository = ModelRepository(quick_run.folder)

    assert repository.load_all() == {"mnist_mlp": None}
    assert repository.get().model_path == quick_run.folder / "mnist_mlp.onnx"


@pytest.mark.slow
def test_progress_lines_count_the_whole_run(quick_run: QuickRun) -> None:
    lines = [line for line in quick_run.result.stdout.splitlines() if line.startswith("run ")]

    assert [line.split(", elapsed")[0] for line in lines] == [
        "run 1/2 epochs (50%), model_1 epoch 1/2",
        "run 2/2 epochs (100%), model_1 epoch 2/2",
    ]
    assert re.search(r"elapsed \d+:\d\d, ETA 0:00 \(\d\d:\d\d UTC\)$", lines[-1])


@pytest.mark.slow
def test_output_dir_models_replaces_the_shipped_model_and_says_so(
    quick_run: QuickRun, mnist_dir: Path
) -> None:
    shipped_copy = quick_run.cwd / "models"
    shutil.copytree(SHIPPED, shipped_copy)
    before = hashlib.sha256((shipped_copy / "mnist_mlp.onnx").read_bytes()).hexdigest()

    result = train(
        quick_run.cwd, *QUICK_RUN, "--export-only", "--output-dir", "models", mnist_dir=mnist_dir
    )

    assert result.returncode == 0, result.stderr
    assert "This run replaces models/mnist_mlp.onnx and its cards when it ends." in result.stdout
    # The shipped versions are 1 (fp32) and 2 (int8): the replacements are new versions.
    assert "It writes version 3 of the model (int8: version 4)." in result.stdout
    for card_name, version in (("mnist_mlp.json", "3"), ("mnist_mlp.int8.json", "4")):
        card = json.loads((shipped_copy / card_name).read_text(encoding="utf-8"))
        assert card["version"] == version
    after = (shipped_copy / "mnist_mlp.onnx").read_bytes()
    assert hashlib.sha256(after).hexdigest() != before
    assert after == (quick_run.folder / "mnist_mlp.onnx").read_bytes()


@pytest.mark.slow
def test_the_offline_command_classifies_with_the_run(quick_run: QuickRun) -> None:
    seven = PROJECT_ROOT / "docs" / "seven_28x28.png"
    result = subprocess.run(
        [sys.executable, "-m", "service.offline", "predict", "--json", "--model-repository",
         str(quick_run.folder), str(seven)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    card = json.loads((quick_run.folder / "mnist_mlp.json").read_text(encoding="utf-8"))
    assert answer["model"] == {"name": "mnist_mlp", "version": card["version"]}
    assert len(answer["predictions"][0]["probabilities"]) == 10
