"""Triton's extensions over REST where tritonclient cannot reach: the load/unload body rules,
statistics and configuration on the tiny model, the extensions listed with model control off."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings

LOAD = "/v2/repository/models/mnist_mlp/load"
UNLOAD = "/v2/repository/models/mnist_mlp/unload"


@pytest.fixture
def controlled(tiny_model_path: Path) -> Iterator[TestClient]:
    settings = Settings(model_path=tiny_model_path, access_log=False, model_control=True)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b"", {}),
        (b"{}", {}),
        (b'{"parameters": {}}', {"content-type": "application/json"}),
        (b"", {"content-type": "application/json; charset=utf-8"}),
    ],
)
def test_load_and_unload_take_no_body_or_a_json_object(
    controlled: TestClient, body: bytes, headers: dict[str, str]
) -> None:
    for path in (UNLOAD, LOAD):
        answer = controlled.post(path, content=body, headers=headers)
        assert answer.status_code == 200, answer.text
    assert controlled.get("/v2/models/mnist_mlp/ready").status_code == 200


@pytest.mark.parametrize(
    ("body", "headers", "status", "words"),
    [
        (b"{}", {"content-type": "text/plain"}, 415, "'text/plain' is not accepted"),
        (b"a=1", {"content-type": "application/x-www-form-urlencoded"}, 415, "not accepted"),
        (b"{", {}, 400, "JSON decode error"),
        (b"[1]", {"content-type": "application/json"}, 400, "valid dictionary"),
    ],
)
def test_other_bodies_are_refused_and_change_nothing(
    controlled: TestClient, body: bytes, headers: dict[str, str], status: int, words: str
) -> None:
    answer = controlled.post(UNLOAD, content=body, headers=headers)
    assert answer.status_code == status
    assert words in answer.json()["error"]
    assert controlled.get("/v2/models/mnist_mlp/ready").status_code == 200


def test_statistics_of_every_model_and_the_configuration(tiny_client: TestClient) -> None:
    every = tiny_client.get("/v2/models/stats")
    assert every.status_code == 200
    (entry,) = every.json()["model_stats"]
    assert entry["name"] == "mnist_mlp" and entry["inference_count"] == 0
    config = tiny_client.get("/v2/models/mnist_mlp/config").json()
    assert config["max_batch_size"] == Settings().max_batch_size
    assert config["input"][0]["dims"] == [28, 28]
    version = entry["version"]
    assert tiny_client.get(f"/v2/models/mnist_mlp/versions/{version}/config").json() == config
    assert tiny_client.get("/v2/models/nine/config").status_code == 404
    assert tiny_client.get("/v2/models/nine/stats").status_code == 404


def test_without_dynamic_batching_the_configuration_says_so(tiny_model_path: Path) -> None:
    settings = Settings(model_path=tiny_model_path, access_log=False, dynamic_batching=False)
    with TestClient(create_app(settings)) as client:
        assert "dynamic_batching" not in client.get("/v2/models/mnist_mlp/config").json()


def test_with_model_control_off_the_repository_extension_is_not_listed(
    tiny_model_path: Path,
) -> None:
    settings = Settings(model_path=tiny_model_path, access_log=False, model_control=False)
    with TestClient(create_app(settings)) as client:
        extensions = client.get("/v2").json()["extensions"]
        assert "model_repository" not in extensions
        assert {"model_configuration", "statistics", "binary_tensor_data"} <= set(extensions)
        assert client.post("/v2/repository/index").status_code == 404
