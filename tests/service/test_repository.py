"""The model repository through the real app: versions side by side, defaults, index, load,
unload, and every way a load can fail (nothing changes, a 4xx JSON names the file)."""

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
from fastapi.testclient import TestClient

from service.inference.repository_files import REPOSITORY_FILE
from service.rest.app import create_app
from service.settings import DEFAULT_REPOSITORY, Settings
from tests.support.images import png_bytes
from tests.support.models import build_tiny_model, write_model

IMAGES = np.random.default_rng(7).integers(0, 256, (3, 28, 28), dtype=np.uint8)


def infer_body(images: np.ndarray = IMAGES) -> dict:
    return {
        "inputs": [
            {
                "name": "image",
                "shape": list(images.shape),
                "datatype": "UINT8",
                "data": images.ravel().tolist(),
            }
        ]
    }


def reference(model_path: Path, images: np.ndarray = IMAGES) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": images})[0]


def probabilities(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    (output,) = response.json()["outputs"]
    return np.asarray(output["data"], dtype=np.float32).reshape(output["shape"])


def write_version(folder: Path, stem: str, version: str, seed: int, **card) -> Path:
    return write_model(folder, build_tiny_model(seed=seed), stem=stem, version=version, **card)


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """Two versions of mnist_mlp, a (seed 1, older) and b (seed 2, newer)."""
    write_version(tmp_path, "first", "a", 1, created="2026-01-01T00:00:00Z")
    write_version(tmp_path, "second", "b", 2, created="2026-02-01T00:00:00Z")
    return tmp_path


def client_for(folder: Path, **settings) -> TestClient:
    return TestClient(create_app(Settings(model_repository=folder, access_log=False, **settings)))


@pytest.fixture
def client(repository: Path) -> Iterator[TestClient]:
    with client_for(repository) as client:
        yield client


def load(client: TestClient, name: str = "mnist_mlp"):
    return client.post(f"/v2/repository/models/{name}/load")


def index(client: TestClient) -> dict[tuple[str, str], tuple[str, str]]:
    response = client.post("/v2/repository/index")
    assert response.status_code == 200
    return {(row["name"], row["version"]): (row["state"], row["reason"]) for row in response.json()}


def test_every_version_is_served_side_by_side(client: TestClient, repository: Path) -> None:
    metadata = client.get("/v2/models/mnist_mlp").json()
    assert sorted(metadata["versions"]) == ["a", "b"]
    for version, stem in (("a", "first"), ("b", "second")):
        response = client.post(f"/v2/models/mnist_mlp/versions/{version}/infer", json=infer_body())
        assert response.json()["model_version"] == version
        np.testing.assert_allclose(
            probabilities(response), reference(repository / f"{stem}.onnx"), rtol=1e-6
        )
        ready = client.get(f"/v2/models/mnist_mlp/versions/{version}/ready")
        assert ready.json() == {"name": "mnist_mlp", "version": version, "ready": True}


def test_unversioned_requests_get_the_newest_created(client: TestClient, repository: Path) -> None:
    response = client.post("/v2/models/mnist_mlp/infer", json=infer_body())
    assert response.json()["model_version"] == "b"
    files = {"file": png_bytes(IMAGES[0])}
    assert client.post("/predict", files=files).json()["model"]["version"] == "b"
    assert client.post("/predict?version=a", files=files).json()["model"]["version"] == "a"
    unknown = client.post("/predict?version=c", files=files)
    assert unknown.status_code == 404
    assert unknown.json() == {
        "error": "model 'mnist_mlp' has no version 'c'; its versions: 'a', 'b'"
    }


@pytest.mark.parametrize(
    ("declaration", "default"),
    [({"default_version": "a"}, "a"), ({"default_file": "first.onnx"}, "a"), ({}, "b")],
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
    """Whatever their version strings: every card in models/ is one version of mnist_mlp, and
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


def test_a_version_added_on_disk_appears_after_a_load(client: TestClient, repository: Path) -> None:
    added = write_version(repository, "third", "c", 3)
    assert index(client)[("mnist_mlp", "c")] == ("UNAVAILABLE", "on disk, not loaded")
    assert (
        client.post("/v2/models/mnist_mlp/versions/c/infer", json=infer_body()).status_code == 404
    )
    response = load(client)
    assert response.status_code == 200
    assert response.json() == {
        "name": "mnist_mlp",
        "versions": ["a", "b", "c"],
        "default_version": "b",
    }
    assert index(client)[("mnist_mlp", "c")] == ("READY", "")
    served = client.post("/v2/models/mnist_mlp/versions/c/infer", json=infer_body())
    np.testing.assert_allclose(probabilities(served), reference(added), rtol=1e-6)
    metrics = client.get("/metrics").text
    assert 'mnist_model_loads_total{model="mnist_mlp",result="loaded"} 1.0' in metrics


def test_a_load_replaces_a_version_changed_on_disk(client: TestClient, repository: Path) -> None:
    before = probabilities(client.post("/v2/models/mnist_mlp/versions/a/infer", json=infer_body()))
    changed = write_version(repository, "first", "a", 11)
    assert load(client).status_code == 200
    after = probabilities(client.post("/v2/models/mnist_mlp/versions/a/infer", json=infer_body()))
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, reference(changed), rtol=1e-6)


def test_unload_then_load_round_trip(client: TestClient) -> None:
    response = client.post("/v2/repository/models/mnist_mlp/unload")
    assert response.json() == {"name": "mnist_mlp", "state": "UNAVAILABLE"}
    for method, url in [
        ("post", "/v2/models/mnist_mlp/infer"),
        ("post", "/v2/models/mnist_mlp/versions/a/infer"),
        ("get", "/v2/models/mnist_mlp/ready"),
        ("get", "/v2/models/mnist_mlp"),
        ("get", "/v2/health/ready"),
    ]:
        refused = getattr(client, method)(
            url, **({"json": infer_body()} if method == "post" else {})
        )
        assert refused.status_code == 503, url
        assert "error" in refused.json()
    assert set(index(client).values()) == {("UNAVAILABLE", "unloaded")}
    assert client.post("/v2/repository/models/mnist_mlp/unload").status_code == 200
    assert load(client).status_code == 200
    assert client.get("/v2/health/ready").status_code == 200
    assert client.post("/v2/models/mnist_mlp/infer", json=infer_body()).status_code == 200


def test_the_index_lists_only_ready_versions_when_asked(
    client: TestClient, repository: Path
) -> None:
    write_version(repository, "third", "c", 3)
    rows = client.post("/v2/repository/index", json={"ready": True}).json()
    assert [(row["name"], row["version"], row["state"]) for row in rows] == [
        ("mnist_mlp", "a", "READY"),
        ("mnist_mlp", "b", "READY"),
    ]
    refused = client.post("/v2/repository/index", json={"ready": "yes"})
    assert refused.status_code == 400 and "ready" in refused.json()["error"]


def _corrupt_checksum(folder: Path) -> str:
    (folder / "first.onnx").write_bytes(build_tiny_model(seed=5).SerializeToString())
    return f"model {folder / 'first.onnx'}: sha256 differs from the card {folder / 'first.json'}"


def _missing_card(folder: Path) -> str:
    write_version(folder, "third", "c", 3).with_suffix(".json").unlink()
    return f"model {folder / 'third.onnx'}: model card {folder / 'third.json'}: file not found"


def _broken_contract(folder: Path) -> str:
    flat = [{"name": "image", "datatype": "UINT8", "shape": [-1, 784]}]
    write_version(folder, "third", "c", 3, inputs=flat)
    return (
        f"model {folder / 'third.onnx'}: inputs image UINT8 [-1, 28, 28] do not match the "
        "card's image UINT8 [-1, 784]"
    )


def _corrupt_model(folder: Path) -> str:
    path = write_version(folder, "third", "c", 3, sha256=hashlib.sha256(b"not onnx").hexdigest())
    path.write_bytes(b"not onnx")
    return f"model {path}: not a loadable ONNX model"


def _duplicate_version(folder: Path) -> str:
    write_version(folder, "third", "a", 3)
    return (
        f"model {folder / 'third.onnx'}: its card gives version 'a' of 'mnist_mlp', as the card "
        f"of {folder / 'first.onnx'} does"
    )


def _invalid_card(folder: Path) -> str:
    write_version(folder, "third", "c", 3).with_suffix(".json").write_text("{not json")
    return f"model {folder / 'third.onnx'}: model card {folder / 'third.json'}: not valid JSON"


def _stale_default(folder: Path) -> str:
    document = {"models": {"mnist_mlp": {"default_version": "z"}}}
    (folder / REPOSITORY_FILE).write_text(json.dumps(document))
    return (
        f"repository file {folder / REPOSITORY_FILE}: the default of 'mnist_mlp', 'z', is none "
        "of its versions on disk"
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
        _stale_default,
        _bad_repository_file,
    ],
)
def test_a_failed_load_changes_nothing_and_names_the_file(
    client: TestClient, repository: Path, break_it
) -> None:
    served = probabilities(client.post("/v2/models/mnist_mlp/versions/a/infer", json=infer_body()))
    expected = break_it(repository)
    response = load(client)
    assert response.status_code == 400
    message = response.json()["error"]
    assert message.startswith("load of model 'mnist_mlp' failed, nothing changed: ")
    assert expected in message
    again = probabilities(client.post("/v2/models/mnist_mlp/versions/a/infer", json=infer_body()))
    np.testing.assert_array_equal(again, served)
    assert set(index(client)) >= {("mnist_mlp", "a"), ("mnist_mlp", "b")}
    metrics = client.get("/metrics").text
    assert 'mnist_model_loads_total{model="mnist_mlp",result="failed"} 1.0' in metrics


def test_unknown_models_are_404(client: TestClient, repository: Path) -> None:
    response = load(client, "nope")
    assert response.status_code == 404
    assert response.json() == {
        "error": f"model 'nope' is not in the repository {repository}; it holds 'mnist_mlp'"
    }
    unload = client.post("/v2/repository/models/nope/unload")
    assert unload.status_code == 404
    assert unload.json() == {"error": "unknown model 'nope'; nothing to unload"}


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
        assert index(client)[("mnist_mlp", "a")] == ("READY", "")


def test_a_single_model_path_is_a_repository_of_one(tmp_path: Path) -> None:
    model_path = write_version(tmp_path, "only", "1", 4)
    settings = Settings(model_path=model_path, access_log=False)
    with TestClient(create_app(settings)) as client:
        assert client.get("/v2/models/mnist_mlp").json()["versions"] == ["1"]
        changed = write_version(tmp_path, "only", "2", 6)
        assert load(client).json() == {
            "name": "mnist_mlp",
            "versions": ["2"],
            "default_version": "2",
        }
        served = client.post("/v2/models/mnist_mlp/infer", json=infer_body())
        np.testing.assert_allclose(probabilities(served), reference(changed), rtol=1e-6)


def test_a_broken_repository_stops_the_start_naming_the_file(tmp_path: Path) -> None:
    expected = _missing_card(tmp_path)
    with pytest.raises(Exception, match="file not found") as raised, client_for(tmp_path):
        pass
    assert expected in str(raised.value)
