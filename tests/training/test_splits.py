"""The notebook's preprocessing, and a validation split that never touches the test set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.training.idx_writer import write_tiny_mnist
from training.data import load_mnist
from training.splits import prepare_splits


def test_validation_is_the_last_sixth_of_the_training_images(tmp_path: Path) -> None:
    mnist = load_mnist(write_tiny_mnist(tmp_path, train_count=600, test_count=10))

    splits = prepare_splits(mnist)

    assert len(splits.train.inputs) == 500
    assert len(splits.validation.inputs) == 100
    np.testing.assert_array_equal(splits.validation.labels, mnist.train_labels[500:])
    np.testing.assert_array_equal(splits.test_images, mnist.test_images)
    assert splits.describe()["validation_from"] == "the last 100 of the first 600 training images"


def test_inputs_are_flat_scaled_floats_and_targets_one_hot(tiny_mnist_dir: Path) -> None:
    mnist = load_mnist(tiny_mnist_dir)

    test = prepare_splits(mnist).test

    assert test.inputs.shape == (6, 784)
    assert test.inputs.dtype == np.float32
    np.testing.assert_allclose(test.inputs[0] * 255, mnist.test_images[0].ravel(), atol=1e-4)
    assert test.targets.shape == (6, 10)
    np.testing.assert_array_equal(test.targets.sum(axis=1), np.ones(6))
    np.testing.assert_array_equal(test.labels, mnist.test_labels)


def test_limit_keeps_the_first_training_images(tmp_path: Path) -> None:
    mnist = load_mnist(write_tiny_mnist(tmp_path, train_count=300, test_count=10))

    splits = prepare_splits(mnist, limit=120)

    assert (len(splits.train.inputs), len(splits.validation.inputs)) == (100, 20)
    np.testing.assert_array_equal(splits.validation.labels, mnist.train_labels[100:120])


def test_a_tiny_limit_is_refused(tiny_mnist_dir: Path) -> None:
    with pytest.raises(ValueError, match="limit must be at least 100"):
        prepare_splits(load_mnist(tiny_mnist_dir), limit=99)
