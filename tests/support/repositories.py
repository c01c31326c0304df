"""Model repositories for tests: folders of tiny real versions, the app serving one, and the
requests the repository tests make."""

from pathlib import Path

import numpy as np
import onnxruntime
from fastapi.testclient import TestClient

from service.rest.app import create_rest_app
from service.settings import Settings
from tests.support.models import build_tiny_model, write_model

IMAGES = np.random.default_rng(7).integers(0, 256, (3, 28, 28), dtype=np.uint8)


def write_version(folder: Path, stem: str, version: str, seed: int, **card) -> Path:
    """``<stem>.onnx`` (a tiny model from ``seed``) and its card, version ``version``."""
    return write_model(folder, build_tiny_model(seed=seed), stem=stem, version=version, **card)


def two_versions(folder: Path) -> Path:
    """Two versions of mnist_mlp: 1 (first.onnx, seed 1, older) and 2 (second.onnx, newer)."""
    write_version(folder, "first", "1", 1, created="2026-01-01T00:00:00Z")
    write_version(folder, "second", "2", 2, created="2026-02-01T00:00:00Z")
    return folder


def infer_body(images: np.ndarray = IMAGES) -> dict:
    """A V2 JSON inference request for ``images``."""
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
    """What onnxruntime alone answers for ``images`` with the file on disk."""
    session = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": images})[0]


def probabilities(response) -> np.ndarray:
    """The probabilities of a 200 V2 JSON answer."""
    assert response.status_code == 200, response.text
    (output,) = response.json()["outputs"]
    return np.asarray(output["data"], dtype=np.float32).reshape(output["shape"])


def client_for(folder: Path, **settings) -> TestClient:
    """The real app serving the repository ``folder`` (enter it to load the models), with its
    model control on unless told otherwise."""
    values = {"model_repository": folder, "access_log": False, "model_control": True}
    return TestClient(create_rest_app(Settings(**(values | settings))))


def load(client: TestClient, name: str = "mnist_mlp"):
    return client.post(f"/v2/repository/models/{name}/load")


def index(client: TestClient) -> dict[tuple[str, str], tuple[str, str]]:
    """The repository index as {(name, version): (state, reason)}."""
    response = client.post("/v2/repository/index")
    assert response.status_code == 200
    return {(row["name"], row["version"]): (row["state"], row["reason"]) for row in response.json()}
