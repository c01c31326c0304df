"""Fixtures shared by every test: tiny real models, the real app, real PNG bytes."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import DEFAULT_MODEL_PATH, Settings
from tests.support.models import write_model
from tests.support.repositories import client_for, two_versions

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def tiny_model_path(tmp_path: Path) -> Path:
    """A real ONNX model with the shipped signature, written into ``tmp_path``."""
    return write_model(tmp_path)


@pytest.fixture
def tiny_settings(tiny_model_path: Path) -> Settings:
    """The tiny model, gRPC on a port the OS picks, no access log."""
    return Settings(model_path=tiny_model_path, access_log=False, grpc_port=0)


@pytest.fixture
def tiny_client(tiny_settings: Settings) -> Iterator[TestClient]:
    """The served app (REST, with gRPC in its lifespan) on the tiny model, lifespan entered."""
    with TestClient(create_app(tiny_settings)) as client:
        yield client


@pytest.fixture(scope="session")
def shipped_model_path() -> Path:
    if not DEFAULT_MODEL_PATH.exists():
        pytest.skip("the shipped model models/mnist_mlp.onnx is not built yet")
    return DEFAULT_MODEL_PATH


@pytest.fixture(scope="session")
def shipped_client(shipped_model_path: Path) -> Iterator[TestClient]:
    """The served app on the shipped repository (every shipped version; the default one unless a
    request names another), shared by the tests that only read from it."""
    with TestClient(create_app(Settings(access_log=False, grpc_port=0))) as client:
        yield client


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The MNIST files named by ``MNIST_DIR`` (relative paths are taken from the project root)."""
    value = os.environ.get("MNIST_DIR")
    if not value:
        pytest.skip("MNIST_DIR is not set; it names a folder with the four MNIST IDX files")
    path = Path(value)
    return path if path.is_absolute() else (PROJECT_ROOT / path).resolve()


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """A model repository of two tiny versions of mnist_mlp (tests.support.repositories)."""
    return two_versions(tmp_path)


@pytest.fixture
def repository_client(repository: Path) -> Iterator[TestClient]:
    """The real app serving ``repository``, lifespan entered."""
    with client_for(repository) as client:
        yield client
