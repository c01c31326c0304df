"""Write small IDX files for the loader tests, by the format's spec rather than by ``training``."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def idx_bytes(magic: int, array: np.ndarray) -> bytes:
    """An IDX file's content: big-endian magic and dimensions, then the uint8 payload."""
    header = magic.to_bytes(4, "big") + b"".join(size.to_bytes(4, "big") for size in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(
    path: Path, magic: int, array: np.ndarray, compress: bool = False, cut: int = 0
) -> Path:
    """Write ``array`` as an IDX file, gzip-compressed (adding ``.gz``) and cut short if asked."""
    content = idx_bytes(magic, array)
    content = content[: len(content) - cut]
    if compress:
        content = gzip.compress(content)
        path = path.with_name(f"{path.name}.gz")
    path.write_bytes(content)
    return path


def write_tiny_mnist(directory: Path, train_count: int = 12, test_count: int = 6) -> Path:
    """The four gzip IDX files with random pixels and labels 0, 1, 2, ... in ``directory``."""
    generator = np.random.default_rng(0)
    for split, count in (("train", train_count), ("test", test_count)):
        images = generator.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = np.arange(count, dtype=np.uint8) % 10
        write_idx(directory / IDX_NAMES[f"{split}_images"], IMAGES_MAGIC, images, compress=True)
        write_idx(directory / IDX_NAMES[f"{split}_labels"], LABELS_MAGIC, labels, compress=True)
    return directory
