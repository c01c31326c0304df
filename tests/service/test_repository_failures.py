"""Every way a load can fail: nothing changes, the old versions keep serving, and a 4xx JSON
names the file and the problem; the same problems stop a start in one line."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.inference.model_card import VERSION_EXPECTED
from service.inference.repository_files import REPOSITORY_FILE
from tests.support.models import build_tiny_model
from tests.support.repositories import (
    client_for,
    index,
    infer_body,
    load,
    probabilities,
    write_version,
)


def _corrupt_checksum(folder: Path) -> str:
    (folder / "first.onnx").write_bytes(build_tiny_model(seed=5).SerializeToString())
    return f"model {folder / 'first.onnx'}: sha256 differs from the card {folder / 'first.json'}"


def _missing_card(folder: Path) -> str:
    write_version(folder, "third", "3", 3).with_suffix(".json").unlink()
    return f"model {folder / 'third.onnx'}: model card {folder / 'third.json'}: file not found"


def _broken_contract(folder: Path) -> str:
    flat = [{"name": "image", "datatype": "UINT8", "shape": [-1, 784]}]
    write_version(folder, "third", "3", 3, inputs=flat)
    return (
        f"model {folder / 'third.onnx'}: inputs image UINT8 [-1, 28, 28] do not match the "
        "card's image UINT8 [-1, 784]"
    )


def _corrupt_model(folder: Path) -> str:
    path = write_version(folder, "third", "3", 3, sha256=hashlib.sha256(b"not onnx").hexdigest())
    path.write_bytes(b"not onnx")
    return f"model {path}: not a loadable ONNX model"


def _duplicate_version(folder: Path) -> str:
    write_version(folder, "third", "1", 3)
    return (
        f"model {folder / 'third.onnx'}: its card gives version '1' of 'mnist_mlp', as the card "
        f"of {folder / 'first.onnx'} does"
    )


def _invalid_card(folder: Path) -> str:
    write_version(folder, "third", "3", 3).with_suffix(".json").write_text("{not json")
    return f"model {folder / 'third.onnx'}: model card {folder / 'third.json'}: not valid JSON"


def _label_version(folder: Path) -> str:
    write_version(folder, "third", "20261206-56941f5d", 3)
    return (
        f"model {folder / 'third.onnx'}: model card {folder / 'third.json'}: version: "
        f"'20261206-56941f5d' of mnist_mlp: {VERSION_EXPECTED}"
    )


def _stale_default(folder: Path) -> str:
    document = {"models": {"mnist_mlp": {"default_version": "9"}}}
    (folder / REPOSITORY_FILE).write_text(json.dumps(document))
    return (
        f"repository file {folder / REPOSITORY_FILE}: the default of 'mnist_mlp', '9', is none "
        "of its versions on disk"
    )


def _label_default(folder: Path) -> str:
    document = {"models": {"mnist_mlp": {"default_version": "latest"}}}
    (folder / REPOSITORY_FILE).write_text(json.dumps(document))
    return (
        f"repository file {folder / REPOSITORY_FILE}: default_version 'latest' of mnist_mlp: "
        f"{VERSION_EXPECTED}"
    )


def _bad_repository_file(folder: Path) -> str:
    (folder / REPOSITORY_FILE).write_text(json.dumps({"models": {"mnist_mlp": {"default": 1}}}))
    return f"repository file {folder / REPOSITORY_FILE}: expected"


def _unknown_default_model(folder: Path) -> str:
    (folder / REPOSITORY_FILE).write_text(json.dumps({"default_model": "digits"}))
    return (
        f"repository file {folder / REPOSITORY_FILE}: default_model 'digits' is not in the folder"
    )


@pytest.mark.parametrize(
    "break_it",
    [
        _unknown_default_model,
        _corrupt_checksum,
        _missing_card,
        _broken_contract,
        _corrupt_model,
        _duplicate_version,
        _invalid_card,
        _label_version,
        _stale_default,
        _label_default,
        _bad_repository_file,
    ],
)
def test_a_failed_load_changes_nothing_and_names_the_file(
    repository_client: TestClient, repository: Path, break_it
) -> None:
    served = probabilities(
        repository_client.post("/v2/models/mnist_mlp/versions/1/infer", json=infer_body())
    )
    expected = break_it(repository)
    response = load(repository_client)
    assert response.status_code == 400
    message = response.json()["error"]
    assert message.startswith("load of model 'mnist_mlp' failed, nothing changed: ")
    assert expected.replace(f"{repository}/", "") in message  # The file, not where it is.
    assert str(repository) not in message
    again = probabilities(
        repository_client.post("/v2/models/mnist_mlp/versions/1/infer", json=infer_body())
    )
    np.testing.assert_array_equal(again, served)
    assert set(index(repository_client)) >= {("mnist_mlp", "1"), ("mnist_mlp", "2")}
    metrics = repository_client.get("/metrics").text
    assert 'mnist_model_loads_total{model="mnist_mlp",result="failed"} 1.0' in metrics


def test_unknown_models_are_404(repository_client: TestClient, repository: Path) -> None:
    response = load(repository_client, "nope")
    assert response.status_code == 404
    assert response.json() == {
        "error": "model 'nope' is not in the model repository; it holds 'mnist_mlp'"
    }
    unload = repository_client.post("/v2/repository/models/nope/unload")
    assert unload.status_code == 404
    assert unload.json() == {"error": "unknown model 'nope'; nothing to unload"}


def test_a_broken_repository_stops_the_start_naming_the_file(tmp_path: Path) -> None:
    expected = _missing_card(tmp_path)
    with pytest.raises(Exception, match="file not found") as raised, client_for(tmp_path):
        pass
    assert expected in str(raised.value)
