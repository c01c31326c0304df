"""The MNIST test set, read by ``training.data`` (the one IDX reader), for tests that need it."""

from pathlib import Path

import numpy as np

from training.data import load_mnist


def load_test_set(directory: Path) -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 MNIST test images [N, 28, 28] and their labels [N]."""
    mnist = load_mnist(directory)
    return mnist.test_images, mnist.test_labels
