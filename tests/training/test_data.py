"""The MNIST loader on small files written here: formats read, and every broken file named."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from tests.training.idx_writer import IDX_NAMES, IMAGES_MAGIC, LABELS_MAGIC, write_idx
from training.data import MnistFileError, load_mnist, read_idx


def test_reads_gzip_idx_files(tiny_mnist_dir: Path) -> None:
    mnist = load_mnist(tiny_mnist_dir)

    assert mnist.train_images.shape == (12, 28, 28)
    assert mnist.test_images.shape == (6, 28, 28)
    assert mnist.train_images.dtype == np.uint8
    assert mnist.train_labels.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]


def test_reads_raw_idx_files_the_same_as_gzip(tiny_mnist_dir: Path, tmp_path: Path) -> None:
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    for name in IDX_NAMES.values():
        content = gzip.decompress((tiny_mnist_dir / f"{name}.gz").read_bytes())
        (raw_dir / name).write_bytes(content)

    from_raw, from_gzip = load_mnist(raw_dir), load_mnist(tiny_mnist_dir)

    np.testing.assert_array_equal(from_raw.train_images, from_gzip.train_images)
    np.testing.assert_array_equal(from_raw.test_labels, from_gzip.test_labels)


def test_reads_keras_npz(tmp_path: Path) -> None:
    images = np.zeros((7, 28, 28), dtype=np.uint8)
    labels = np.arange(7, dtype=np.uint8)
    np.savez(tmp_path / "mnist.npz", x_train=images, y_train=labels, x_test=images, y_test=labels)

    mnist = load_mnist(tmp_path)

    assert mnist.train_images.shape == (7, 28, 28)
    assert mnist.test_labels.tolist() == list(range(7))


@pytest.mark.parametrize(
    ("magic", "shape", "cut", "problem"),
    [
        (LABELS_MAGIC + 1, (3, 28, 28), 0, "wrong magic number"),
        (IMAGES_MAGIC, (3, 28, 28), 5, "truncated payload"),
        (IMAGES_MAGIC, (3, 28, 28), 2360, "truncated header"),
    ],
    ids=["wrong-magic", "truncated-payload", "truncated-header"],
)
@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_a_broken_idx_file_is_named(
    tmp_path: Path,
    magic: int,
    shape: tuple[int, ...],
    cut: int,
    problem: str,
    compress: bool,
) -> None:
    array = np.zeros(shape, dtype=np.uint8)
    path = write_idx(tmp_path / "images-idx3-ubyte", magic, array, compress=compress, cut=cut)

    with pytest.raises(MnistFileError, match=problem) as raised:
        read_idx(path, IMAGES_MAGIC)

    assert str(path) in str(raised.value)


def test_corrupt_gzip_is_named(tmp_path: Path) -> None:
    path = tmp_path / "images.gz"
    path.write_bytes(gzip.compress(b"\0" * 100)[:-12])

    with pytest.raises(MnistFileError, match=r"images\.gz: corrupt gzip"):
        read_idx(path, IMAGES_MAGIC)


def test_image_and_label_count_mismatch_names_the_labels_file(tiny_mnist_dir: Path) -> None:
    (tiny_mnist_dir / f"{IDX_NAMES['test_labels']}.gz").unlink()
    write_idx(tiny_mnist_dir / IDX_NAMES["test_labels"], LABELS_MAGIC, np.zeros(5, np.uint8))

    with pytest.raises(MnistFileError, match="t10k-labels-idx1-ubyte: 5 labels for the 6 images"):
        load_mnist(tiny_mnist_dir)


@pytest.mark.parametrize(
    ("key", "array", "problem"),
    [
        ("train_images", np.zeros((12, 28, 27), np.uint8), "expected \\[n, 28, 28\\]"),
        ("train_labels", np.full(12, 10, np.uint8), "label 10 outside 0-9"),
    ],
    ids=["not-28x28", "label-out-of-range"],
)
def test_bad_contents_are_named(
    tiny_mnist_dir: Path, key: str, array: np.ndarray, problem: str
) -> None:
    (tiny_mnist_dir / f"{IDX_NAMES[key]}.gz").unlink()
    magic = IMAGES_MAGIC if key.endswith("images") else LABELS_MAGIC
    write_idx(tiny_mnist_dir / IDX_NAMES[key], magic, array)

    with pytest.raises(MnistFileError, match=f"{IDX_NAMES[key]}: .*{problem}"):
        load_mnist(tiny_mnist_dir)


def test_a_missing_idx_file_is_named(tiny_mnist_dir: Path) -> None:
    (tiny_mnist_dir / f"{IDX_NAMES['train_labels']}.gz").unlink()

    with pytest.raises(MnistFileError, match="train-labels-idx1-ubyte: file not found"):
        load_mnist(tiny_mnist_dir)


def test_a_directory_without_mnist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MnistFileError, match="no MNIST here"):
        load_mnist(tmp_path)


def test_a_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MnistFileError, match="no such directory"):
        load_mnist(tmp_path / "absent")


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"not a zip archive", "not a readable npz"), (None, "missing array")],
    ids=["corrupt", "missing-array"],
)
def test_a_broken_npz_is_named(tmp_path: Path, content: bytes | None, problem: str) -> None:
    path = tmp_path / "mnist.npz"
    if content is None:
        np.savez(path, x_train=np.zeros((1, 28, 28), np.uint8))
    else:
        path.write_bytes(content)

    with pytest.raises(MnistFileError, match=f"mnist.npz: {problem}"):
        load_mnist(tmp_path)
