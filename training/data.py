"""Load MNIST from local IDX files, Keras' ``mnist.npz`` or Keras' download, and check it.

Nothing here imports TensorFlow, so a bad ``--data-dir`` is reported in a fraction of a second.
"""

from __future__ import annotations

import gzip
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.errors import MnistFileError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
IMAGE_SIDE = 28
CLASS_COUNT = 10
NPZ_NAME = "mnist.npz"
IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class Mnist:
    """The raw data set: uint8 images of shape [count, 28, 28] and uint8 labels 0-9."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str


def load_mnist(data_dir: str | os.PathLike[str] | None) -> Mnist:
    """Read MNIST from ``data_dir`` (IDX files, else ``mnist.npz``), or download it when None."""
    if data_dir is None:
        return _download_with_keras()
    directory = Path(data_dir)
    if not directory.is_dir():
        raise MnistFileError(f"{directory}: no such directory")
    if any(_find_idx(directory, name) for name in IDX_NAMES.values()):
        return _read_idx_directory(directory)
    if (directory / NPZ_NAME).is_file():
        return read_npz(directory / NPZ_NAME)
    raise MnistFileError(
        f"{directory}: no MNIST here (expected the four IDX files, gzip or raw, or {NPZ_NAME})"
    )


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse one IDX file (gzip or raw) whose header must carry ``magic``; returns uint8 data."""
    content = _read_bytes(path)
    dimension_count = magic & 0xFF
    header_size = 4 + 4 * dimension_count
    if len(content) < header_size:
        raise MnistFileError(f"{path}: truncated header ({len(content)} bytes)")
    found_magic = int.from_bytes(content[:4], "big")
    if found_magic != magic:
        raise MnistFileError(f"{path}: wrong magic number {found_magic}, expected {magic}")
    shape = tuple(
        int.from_bytes(content[4 + 4 * index : 8 + 4 * index], "big")
        for index in range(dimension_count)
    )
    expected_size = int(np.prod(shape))
    payload = content[header_size:]
    if len(payload) < expected_size:
        raise MnistFileError(f"{path}: truncated payload, {len(payload)} of {expected_size} bytes")
    if len(payload) > expected_size:
        raise MnistFileError(f"{path}: {len(payload) - expected_size} bytes after the payload")
    return np.frombuffer(payload, dtype=np.uint8).reshape(shape)


def read_npz(path: Path) -> Mnist:
    """Read Keras' ``mnist.npz`` (keys x_train, y_train, x_test, y_test)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    except FileNotFoundError:
        raise MnistFileError(f"{path}: file not found") from None
    except KeyError as error:
        raise MnistFileError(f"{path}: missing array {error}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise MnistFileError(f"{path}: not a readable npz archive ({error})") from None
    for key, array in arrays.items():
        if array.dtype != np.uint8:
            raise MnistFileError(f"{path}: {key} has dtype {array.dtype}, expected uint8")
    return _checked(
        arrays["x_train"],
        arrays["y_train"],
        arrays["x_test"],
        arrays["y_test"],
        names=(f"{path} x_train", f"{path} y_train", f"{path} x_test", f"{path} y_test"),
        source=str(path),
    )


def _read_idx_directory(directory: Path) -> Mnist:
    """Read the four IDX files, naming the first one that is missing."""
    paths = {}
    for key, name in IDX_NAMES.items():
        found = _find_idx(directory, name)
        if found is None:
            raise MnistFileError(f"{directory / name}: file not found (nor {name}.gz)")
        paths[key] = found
    arrays = {
        key: read_idx(path, IMAGES_MAGIC if key.endswith("images") else LABELS_MAGIC)
        for key, path in paths.items()
    }
    return _checked(
        arrays["train_images"],
        arrays["train_labels"],
        arrays["test_images"],
        arrays["test_labels"],
        names=tuple(str(paths[key]) for key in IDX_NAMES),
        source=f"{directory} (IDX files)",
    )


def _find_idx(directory: Path, name: str) -> Path | None:
    """The raw file if present, else its ``.gz``, else None."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it starts with the gzip signature."""
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise MnistFileError(f"{path}: file not found") from None
    except OSError as error:
        raise MnistFileError(f"{path}: cannot read ({error.strerror})") from None
    if not content.startswith(b"\x1f\x8b"):
        return content
    try:
        return gzip.decompress(content)
    except (OSError, EOFError, zlib.error) as error:
        raise MnistFileError(f"{path}: corrupt gzip stream ({error})") from None


def _checked(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    names: tuple[str, str, str, str],
    source: str,
) -> Mnist:
    """Check shapes, counts and labels of both splits; ``names`` say which file is at fault."""
    _check_split(train_images, train_labels, names[0], names[1])
    _check_split(test_images, test_labels, names[2], names[3])
    return Mnist(train_images, train_labels, test_images, test_labels, source)


def _check_split(
    images: np.ndarray, labels: np.ndarray, images_name: str, labels_name: str
) -> None:
    """Images must be [count, 28, 28], labels [count] with values 0-9."""
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise MnistFileError(f"{images_name}: images of shape {images.shape}, expected [n, 28, 28]")
    if labels.ndim != 1:
        raise MnistFileError(f"{labels_name}: labels of shape {labels.shape}, expected [n]")
    if len(labels) != len(images):
        raise MnistFileError(
            f"{labels_name}: {len(labels)} labels for the {len(images)} images of {images_name}"
        )
    if len(labels) and int(labels.max()) >= CLASS_COUNT:
        raise MnistFileError(f"{labels_name}: label {int(labels.max())} outside 0-9")


def _download_with_keras() -> Mnist:
    """Keras' own download (cached in ~/.keras/datasets) for users with internet and no files."""
    import keras

    try:
        (train_images, train_labels), (test_images, test_labels) = keras.datasets.mnist.load_data()
    except Exception as error:
        raise MnistFileError(
            f"keras.datasets.mnist: download failed ({error}); pass --data-dir or set MNIST_DIR"
        ) from None
    return _checked(
        train_images,
        train_labels,
        test_images,
        test_labels,
        names=("keras x_train", "keras y_train", "keras x_test", "keras y_test"),
        source="keras.datasets.mnist.load_data()",
    )
