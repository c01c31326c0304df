"""The model repository through the real app: versions side by side, defaults, the index,
load and unload, the off switch, several workers, a single model path."""

import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.inference.model_control import reload_everything
from service.inference.repository_files import REPOSITORY_FILE
from service.rest.app import create_rest_app
from service.settings import DEFAULT_REPOSITORY, Settings
from tests.support.images import png_bytes
from tests.support.repositories import (
    IMAGES,
    client_for,
    index,
    infer_body,
    load,
    probabilities,
    reference,
    write_version,
)


def test_every_version_is_served_side_by_side(
    repository_client: TestClient, repository: Path
) -> None:
    metadata = repository_client.get("/v2/models/mnist_mlp").json()
    assert sorted(metadata["versions"]) == ["1", "2"]
    for version, stem in (("1", "first"), ("2", "second")):
        response = repository_client.post(
            f"/v2/models/mnist_mlp/versions/{version}/infer", json=infer_body()
        )
        assert response.json()["model_version"] == version
        np.testing.assert_allclose(
            probabilities(response), reference(repository / f"{stem}.onnx"), rtol=1e-6
        )
        ready = repository_client.get(f"/v2/models/mnist_mlp/versions/{version}/ready")
        assert ready.json() == {"name": "mnist_mlp", "version": version, "ready": True}


def test_unversioned_requests_get_the_newest_created(
    repository_client: TestClient, repository: Path
) -> None:
    response = repository_client.post("/v2/models/mnist_mlp/infer", json=infer_body())
    assert response.json()["model_version"] == "2"
    files = {"file": png_bytes(IMAGES[0])}
    assert repository_client.post("/predict", files=files).json()["model"]["version"] == "2"
    assert (
        repository_client.post("/predict?version=1", files=files).json()["model"]["version"] == "1"
    )
    unknown = repository_client.post("/predict?version=3", files=files)
    assert unknown.status_code == 404
    assert unknown.json() == {
        "error": "model 'mnist_mlp' has no version '3'; its versions: '1', '2'"
    }


def test_equal_dates_give_the_default_to_the_last_file(tmp_path: Path) -> None:
    write_version(tmp_path, "b_second", "7", 1, created="2026-03-01T00:00:00Z")
    write_version(tmp_path, "c_third", "5", 2, created="2026-03-01T00:00:00Z")
    write_version(tmp_path, "a_first", "9", 3, created="2026-01-01T00:00:00Z")
    with client_for(tmp_path) as client:
        response = client.post("/v2/models/mnist_mlp/infer", json=infer_body())
        assert response.json()["model_version"] == "5"


@pytest.mark.parametrize("asked", ["01", "1.0", "v1", "-1"])
def test_a_version_asked_for_is_the_exact_number_or_404(
    repository_client: TestClient, asked: str
) -> None:
    response = repository_client.post(
        f"/v2/models/mnist_mlp/versions/{asked}/infer", json=infer_body()
    )
    assert response.status_code == 404
    assert response.json() == {
        "error": f"model 'mnist_mlp' has no version {asked!r}; its versions: '1', '2'"
    }


def test_versions_are_listed_as_numbers_not_as_text(tmp_path: Path) -> None:
    write_version(tmp_path, "a_first", "10", 1, created="2026-02-01T00:00:00Z")
    write_version(tmp_path, "b_second", "9", 2, created="2026-01-01T00:00:00Z")
    with client_for(tmp_path) as client:
        assert client.get("/v2/models/mnist_mlp").json()["versions"] == ["9", "10"]
        assert [version for _, version in index(client)] == ["9", "10"]
        assert load(client).json()["versions"] == ["9", "10"]


@pytest.mark.parametrize(
    ("declaration", "default"),
    [({"default_version": "1"}, "1"), ({"default_file": "first.onnx"}, "1"), ({}, "2")],
)
def test_the_repository_file_names_the_default(
    repository: Path, declaration: dict, default: str
) -> None:
    document = {"default_model": "mnist_mlp", "models": {"mnist_mlp": declaration}}
    (repository / REPOSITORY_FILE).write_text(json.dumps(document), encoding="utf-8")
    with client_for(repository) as client:
        response = client.post("/v2/models/mnist_mlp/infer", json=infer_body())
        assert response.json()["model_version"] == default


def test_the_shipped_repository_serves_fp32_and_int8_at_once(shipped_client: TestClient) -> None:
    """Whatever their versions: every card in models/ is one version of mnist_mlp, and
    the default is the one models/repository.json names."""
    cards = {
        path.stem: json.loads(path.read_text(encoding="utf-8"))
        for path in DEFAULT_REPOSITORY.glob("*.json")
        if path.with_suffix(".onnx").exists()
    }
    versions = {card["version"] for card in cards.values()}
    assert len(versions) == len(cards) >= 2
    metadata = shipped_client.get("/v2/models/mnist_mlp").json()
    assert set(metadata["versions"]) == versions
    declared = json.loads((DEFAULT_REPOSITORY / REPOSITORY_FILE).read_text(encoding="utf-8"))
    default_file = declared["models"]["mnist_mlp"]["default_file"]
    default = cards[Path(default_file).stem]["version"]
    assert (
        shipped_client.post("/v2/models/mnist_mlp/infer", json=infer_body()).json()["model_version"]
        == default
    )
    for version in versions:
        url = f"/v2/models/mnist_mlp/versions/{version}/infer"
        assert shipped_client.post(url, json=infer_body()).json()["model_version"] == version
    metrics = shipped_client.get("/metrics").text
    for version in versions:
        assert "mnist_predictions_total{digit=" in metrics
        assert f'model="mnist_mlp",version="{version}"' in metrics


def test_a_version_added_on_disk_appears_after_a_load(
    repository_client: TestClient, repository: Path
) -> None:
    added = write_version(repository, "third", "3", 3)
    assert index(repository_client)[("mnist_mlp", "3")] == ("UNAVAILABLE", "on disk, not loaded")
    assert (
        repository_client.post(
            "/v2/models/mnist_mlp/versions/3/infer", json=infer_body()
        ).status_code
        == 404
    )
    response = load(repository_client)
    assert response.status_code == 200
    assert response.json() == {
        "name": "mnist_mlp",
        "versions": ["1", "2", "3"],
        "default_version": "2",
    }
    assert index(repository_client)[("mnist_mlp", "3")] == ("READY", "")
    served = repository_client.post("/v2/models/mnist_mlp/versions/3/infer", json=infer_body())
    np.testing.assert_allclose(probabilities(served), reference(added), rtol=1e-6)
    metrics = repository_client.get("/metrics").text
    assert 'mnist_model_loads_total{model="mnist_mlp",result="loaded"} 1.0' in metrics


def test_a_load_replaces_a_version_changed_on_disk(
    repository_client: TestClient, repository: Path
) -> None:
    before = probabilities(
        repository_client.post("/v2/models/mnist_mlp/versions/1/infer", json=infer_body())
    )
    changed = write_version(repository, "first", "1", 11)
    assert load(repository_client).status_code == 200
    after = probabilities(
        repository_client.post("/v2/models/mnist_mlp/versions/1/infer", json=infer_body())
    )
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, reference(changed), rtol=1e-6)


def test_unload_then_load_round_trip(repository_client: TestClient) -> None:
    response = repository_client.post("/v2/repository/models/mnist_mlp/unload")
    assert response.json() == {"name": "mnist_mlp", "state": "UNAVAILABLE"}
    for method, url in [
        ("post", "/v2/models/mnist_mlp/infer"),
        ("post", "/v2/models/mnist_mlp/versions/1/infer"),
        ("get", "/v2/models/mnist_mlp/ready"),
        ("get", "/v2/models/mnist_mlp"),
        ("get", "/v2/health/ready"),
    ]:
        refused = getattr(repository_client, method)(
            url, **({"json": infer_body()} if method == "post" else {})
        )
        assert refused.status_code == 503, url
        assert "error" in refused.json()
    assert set(index(repository_client).values()) == {("UNAVAILABLE", "unloaded")}
    assert repository_client.post("/v2/repository/models/mnist_mlp/unload").status_code == 200
    assert load(repository_client).status_code == 200
    assert repository_client.get("/v2/health/ready").status_code == 200
    assert (
        repository_client.post("/v2/models/mnist_mlp/infer", json=infer_body()).status_code == 200
    )


def test_the_index_lists_only_ready_versions_when_asked(
    repository_client: TestClient, repository: Path
) -> None:
    write_version(repository, "third", "3", 3)
    rows = repository_client.post("/v2/repository/index", json={"ready": True}).json()
    assert [(row["name"], row["version"], row["state"]) for row in rows] == [
        ("mnist_mlp", "1", "READY"),
        ("mnist_mlp", "2", "READY"),
    ]
    refused = repository_client.post("/v2/repository/index", json={"ready": "yes"})
    assert refused.status_code == 400 and "ready" in refused.json()["error"]


def test_model_control_off_removes_the_management_routes(repository: Path) -> None:
    with client_for(repository, model_control=False) as client:
        assert load(client).status_code == 404
        assert client.post("/v2/repository/index").status_code == 404
        paths = client.get("/openapi.json").json()["paths"]
        assert not [path for path in paths if path.startswith("/v2/repository")]


def test_with_several_workers_unload_and_an_orphan_load_say_how_to_reload(
    repository: Path,
) -> None:
    """A worker of several passes a load on to its main process; outside one (here, in the test
    process) it has none, and neither load nor unload can reach the other workers."""
    with client_for(repository, workers=2) as client:
        for operation in ("load", "unload"):
            response = client.post(f"/v2/repository/models/mnist_mlp/{operation}")
            assert response.status_code == 409
            assert "send SIGHUP to the server's main process" in response.json()["error"]
        assert index(client)[("mnist_mlp", "1")] == ("READY", "")


def test_a_single_model_path_is_a_repository_of_one(tmp_path: Path) -> None:
    model_path = write_version(tmp_path, "only", "1", 4)
    settings = Settings(model_path=model_path, access_log=False, model_control=True)
    with TestClient(create_rest_app(settings)) as client:
        assert client.get("/v2/models/mnist_mlp").json()["versions"] == ["1"]
        changed = write_version(tmp_path, "only", "2", 6)
        assert load(client).json() == {
            "name": "mnist_mlp",
            "versions": ["2"],
            "default_version": "2",
        }
        served = client.post("/v2/models/mnist_mlp/infer", json=infer_body())
        np.testing.assert_allclose(probabilities(served), reference(changed), rtol=1e-6)


def test_a_sighup_reload_counts_its_loads_and_failures(
    repository_client: TestClient, repository: Path
) -> None:
    """The reload SIGHUP runs (``reload_everything``) counts each model as the load route does."""
    dataplane = repository_client.app.state.dataplane
    write_version(repository, "third", "3", 3)
    assert reload_everything(dataplane) == []
    assert index(repository_client)[("mnist_mlp", "3")] == ("READY", "")
    (repository / "third.onnx").write_bytes(b"not a model")
    assert len(reload_everything(dataplane)) == 1
    metrics = repository_client.get("/metrics").text
    assert 'mnist_model_loads_total{model="mnist_mlp",result="loaded"} 1.0' in metrics
    assert 'mnist_model_loads_total{model="mnist_mlp",result="failed"} 1.0' in metrics
