"""Fixtures of the reliability suite: one tiny model file shared by every app and live server."""

from pathlib import Path

import pytest

from tests.support.models import write_model


@pytest.fixture(scope="session")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ONNX model with the shipped signature, written once for the session."""
    return write_model(tmp_path_factory.mktemp("model"))
