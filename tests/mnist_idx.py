"""A minimal IDX reader for tests, so service tests need neither TensorFlow nor ``training``."""

import gzip
from pathlib import Path

import numpy as np

TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"


def read_idx(path: Path) -> np.ndarray:
    """The uint8 payload of an IDX file (gzip-compressed or not), shaped by its header."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    dimensions = raw[3]
    shape = tuple(
        int.from_bytes(raw[4 + 4 * index : 8 + 4 * index], "big") for index in range(dimensions)
    )
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dimensions).reshape(shape)


def find_idx(directory: Path, stem: str) -> Path:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{stem}(.gz) is not in {directory}")


def load_test_set(directory: Path) -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 MNIST test images [N, 28, 28] and labels [N]."""
    images = read_idx(find_idx(directory, TEST_IMAGES))
    labels = read_idx(find_idx(directory, TEST_LABELS))
    return images, labels
