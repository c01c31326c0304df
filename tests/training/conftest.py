"""Fixtures for the training tests (``mnist_dir`` comes from the project's tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.idx_writer import write_tiny_mnist


@pytest.fixture
def tiny_mnist_dir(tmp_path: Path) -> Path:
    """A folder with the four IDX files: 12 training and 6 test images of random pixels, gzip."""
    directory = tmp_path / "tiny"
    directory.mkdir()
    return write_tiny_mnist(directory)
