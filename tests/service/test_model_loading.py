"""A missing, unreadable or mismatched model never serves: one message names the file."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
from onnx import TensorProto

from service.inference.classifier import BULK_BATCH, Classifier
from service.inference.model_card import VERSION_EXPECTED, ModelLoadError
from tests.support.models import build_tiny_model, write_model

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def load(model_path: Path) -> Classifier:
    return Classifier.from_files(model_path, model_path.with_suffix(".json"))


def test_a_good_model_loads_and_matches_onnxruntime(tiny_model_path: Path) -> None:
    classifier = load(tiny_model_path)
    images = np.random.default_rng(1).integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    expected = onnxruntime.InferenceSession(str(tiny_model_path)).run(None, {"image": images})[0]
    np.testing.assert_allclose(classifier.predict(images), expected, atol=1e-6)


def test_predict_refuses_arrays_of_the_wrong_form(tiny_model_path: Path) -> None:
    classifier = load(tiny_model_path)
    with pytest.raises(ValueError, match="uint8"):
        classifier.predict(np.zeros((1, 28, 28), dtype=np.float32))


def corrupt_model(path: Path) -> None:
    path.write_bytes(b"this is not protobuf at all" * 10)
    card = json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps(card | {"sha256": None}))


BROKEN_MODELS = [
    ("missing-model", lambda path: path.unlink(), "mnist_mlp.onnx: file not found"),
    ("missing-card", lambda path: path.with_suffix(".json").unlink(), "onnx: model card .*json"),
    ("card-not-json", lambda path: path.with_suffix(".json").write_text("{"), "not valid JSON"),
    (
        "card-without-name",
        lambda path: path.with_suffix(".json").write_text('{"version": "1"}'),
        "name",
    ),
    ("sha256-differs", lambda path: path.write_bytes(path.read_bytes() + b"\0"), "sha256 differs"),
    ("not-onnx", corrupt_model, "not a loadable ONNX model"),
]


@pytest.mark.parametrize(
    ("break_it", "message"),
    [case[1:] for case in BROKEN_MODELS],
    ids=[case[0] for case in BROKEN_MODELS],
)
def test_broken_models_raise_an_error_naming_the_file(
    tmp_path: Path, break_it, message: str
) -> None:
    model_path = write_model(tmp_path)
    break_it(model_path)
    with pytest.raises(ModelLoadError, match=message) as raised:
        load(model_path)
    assert str(tmp_path) in str(raised.value)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (build_tiny_model(input_name="pixels"), "inputs pixels"),
        (build_tiny_model(output_name="scores"), "outputs scores"),
        (build_tiny_model(input_type=TensorProto.FLOAT), "FP32"),
    ],
    ids=["input-name", "output-name", "input-type"],
)
def test_a_signature_differing_from_the_card_is_refused(
    tmp_path: Path, model, message: str
) -> None:
    model_path = write_model(tmp_path, model)
    with pytest.raises(ModelLoadError, match=message):
        load(model_path)


@pytest.mark.parametrize(
    ("version", "shown"),
    [
        ("20261206-56941f5d", "'20261206-56941f5d'"),
        ("v1", "'v1'"),
        ("0", "'0'"),
        ("01", "'01'"),
        ("-1", "'-1'"),
        ("+1", "'+1'"),
        (" 1", "' 1'"),
        ("\uff11", "'\uff11'"),
        ("9223372036854775808", "'9223372036854775808'"),
        ("1" * 5000, repr("1" * 5000)),
        (1, "1"),
    ],
    ids=["label", "letter", "zero", "leading-zero", "minus", "plus", "space", "fullwidth",
         "over-int64", "5000-digits", "json-number"],
)  # fmt: skip
def test_a_card_whose_version_triton_cannot_read_is_refused(
    tmp_path: Path, version: object, shown: str
) -> None:
    model_path = write_model(tmp_path, version=version)
    with pytest.raises(ModelLoadError) as raised:
        load(model_path)
    written = "" if isinstance(version, str) else ", written as a string"
    assert str(raised.value) == (
        f"model {model_path}: model card {model_path.with_suffix('.json')}: version: {shown} of "
        f"mnist_mlp: "
        f"{VERSION_EXPECTED}{written}"
    )


@pytest.mark.parametrize("version", ["1", "2", "10", "9223372036854775807"])
def test_a_card_version_is_a_positive_int64_in_a_string(tmp_path: Path, version: str) -> None:
    assert load(write_model(tmp_path, version=version)).card.version == version


def test_a_card_with_the_wrong_shape_is_refused(tmp_path: Path) -> None:
    tensor = {"name": "image", "datatype": "UINT8", "shape": [-1, 32, 32]}
    model_path = write_model(tmp_path, inputs=[tensor])
    with pytest.raises(ModelLoadError, match="do not match the card"):
        load(model_path)


def run_service(*arguments: str, environment: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "service", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=PROJECT_ROOT,
        env={**os.environ, **environment},
    )


def test_the_command_names_the_missing_model_it_was_given_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "absent.onnx"
    result = run_service(environment={"MNIST_MODEL_PATH": str(missing)})
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"mnist-mlp-serve: model {missing}: file not found"]


def test_the_command_names_the_model_then_its_missing_card_in_one_line(tmp_path: Path) -> None:
    model_path = write_model(tmp_path)
    card_path = model_path.with_suffix(".json")
    card_path.unlink()
    result = run_service("--model-path", str(model_path), environment={})
    assert result.returncode == 1
    expected = f"mnist-mlp-serve: model {model_path}: model card {card_path}: file not found"
    assert result.stderr.splitlines() == [expected]


def test_the_command_exits_non_zero_on_a_corrupt_model(tmp_path: Path) -> None:
    model_path = write_model(tmp_path)
    corrupt_model(model_path)
    result = run_service("--model-path", str(model_path), environment={})
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"mnist-mlp-serve: model {model_path}: not a loadable ONNX model")


def test_the_command_refuses_a_repository_with_a_label_version_in_one_line(
    tmp_path: Path,
) -> None:
    model_path = write_model(tmp_path, version="20261206-56941f5d")
    result = run_service("--model-repository", str(tmp_path), environment={})
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"mnist-mlp-serve: model {model_path}: model card {model_path.with_suffix('.json')}: "
        f"version: '20261206-56941f5d' of mnist_mlp: {VERSION_EXPECTED}"
    ]


def test_the_command_refuses_a_bad_setting_in_one_line() -> None:
    result = run_service(environment={"MNIST_PORT": "eighty"})
    assert result.returncode == 2
    assert "MNIST_PORT" in result.stderr and "Traceback" not in result.stderr


def test_bulk_batches_run_on_every_core_with_the_same_results(tiny_model_path: Path) -> None:
    classifier = load(tiny_model_path)
    assert classifier.bulk_session is not classifier.session
    images = np.random.default_rng(2).integers(0, 256, size=(BULK_BATCH, 28, 28), dtype=np.uint8)
    one_at_a_time = np.concatenate([classifier.predict(image[None]) for image in images])
    np.testing.assert_allclose(classifier.predict(images), one_at_a_time, atol=1e-6)
