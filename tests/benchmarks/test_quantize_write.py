"""``benchmarks.quantize --write``: the int8 twin takes the model's next version in its folder,
and the folder still loads as a repository serving both."""

import hashlib
import json
from pathlib import Path

from benchmarks.quantize import write_int8
from service.inference.repository import ModelRepository
from tests.support.models import build_tiny_model, write_model


def _repository_with_fp32(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The fp32 model (version 1) in a folder, a quantized model outside it, the twin's path."""
    folder = tmp_path / "models"
    folder.mkdir()
    fp32 = write_model(folder, metrics={"test_accuracy": 0.99})
    quantized = write_model(tmp_path, build_tiny_model(seed=5), stem="quantized")
    return fp32, quantized, folder / "mnist_mlp.int8.onnx"


def _served_versions(folder: Path) -> list[str]:
    repository = ModelRepository(folder)
    failures = [error for error in repository.load_all().values() if error is not None]
    assert failures == []
    return [entry.version for entry in repository.index()]


def test_the_int8_twin_takes_the_next_version_and_the_folder_serves_both(tmp_path: Path) -> None:
    fp32, quantized, destination = _repository_with_fp32(tmp_path)

    write_int8(quantized, fp32, int8_accuracy=98.5, same_digit=99.0, destination=destination)

    card = json.loads(destination.with_suffix(".json").read_text(encoding="utf-8"))
    assert card["version"] == "2"
    assert card["sha256"] == hashlib.sha256(quantized.read_bytes()).hexdigest()
    assert card["metrics"] == {
        "test_accuracy": 0.985,
        "fp32_test_accuracy": 0.99,
        "same_digit_as_fp32": 0.99,
    }
    assert _served_versions(destination.parent) == ["1", "2"]


def test_writing_the_twin_again_gives_it_a_new_version(tmp_path: Path) -> None:
    fp32, quantized, destination = _repository_with_fp32(tmp_path)

    write_int8(quantized, fp32, 98.5, 99.0, destination=destination)
    write_int8(quantized, fp32, 98.5, 99.0, destination=destination)

    assert _served_versions(destination.parent) == ["1", "3"]
