"""Turn raw MNIST into the notebook's inputs, holding out a validation split of the training images.

The notebook validates (and so selects) on the test set; here the last sixth of the training images
(10,000 of 60,000) is held out instead, and the test set is kept for one final evaluation per model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.data import CLASS_COUNT, IMAGE_SIDE, Mnist

VALIDATION_FRACTION_DENOMINATOR = 6
MINIMUM_LIMIT = 100
FLAT_SIZE = IMAGE_SIDE * IMAGE_SIDE


@dataclass(frozen=True)
class Split:
    """One split as the models see it: flat float32 pixels in [0, 1] and one-hot labels."""

    inputs: np.ndarray
    targets: np.ndarray

    @property
    def labels(self) -> np.ndarray:
        """Class indices, recovered from the one-hot targets."""
        return self.targets.argmax(axis=1)


@dataclass(frozen=True)
class Splits:
    """Training, validation and test splits, plus their raw uint8 images [N, 28, 28].

    The ONNX graph takes raw test images; the robust recipe augments raw training images and
    builds its robustness validation from raw validation images.
    """

    train: Split
    validation: Split
    test: Split
    test_images: np.ndarray
    train_images: np.ndarray
    validation_images: np.ndarray

    def describe(self) -> dict[str, object]:
        """Sizes and origin of each split, for the model card."""
        return {
            "train": len(self.train.inputs),
            "validation": len(self.validation.inputs),
            "test": len(self.test.inputs),
            "validation_from": (
                f"the last {len(self.validation.inputs):,} of the first "
                f"{len(self.train.inputs) + len(self.validation.inputs):,} training images"
            ),
        }


def prepare_splits(mnist: Mnist, limit: int | None = None) -> Splits:
    """Keep the first ``limit`` training images (all if None), hold out their last sixth."""
    train_images, train_labels = mnist.train_images, mnist.train_labels
    if limit is not None:
        if limit < MINIMUM_LIMIT:
            raise ValueError(f"limit must be at least {MINIMUM_LIMIT}, got {limit}")
        train_images, train_labels = train_images[:limit], train_labels[:limit]
    boundary = validation_start(len(train_images))
    return Splits(
        train=to_split(train_images[:boundary], train_labels[:boundary]),
        validation=to_split(train_images[boundary:], train_labels[boundary:]),
        test=to_split(mnist.test_images, mnist.test_labels),
        test_images=mnist.test_images,
        train_images=train_images[:boundary],
        validation_images=train_images[boundary:],
    )


def validation_start(image_count: int) -> int:
    """Index of the first validation image among ``image_count`` training images."""
    return image_count - image_count // VALIDATION_FRACTION_DENOMINATOR


def to_split(images: np.ndarray, labels: np.ndarray) -> Split:
    """Flatten to 784, divide by 255 to float32 and one-hot the labels, as the notebook does."""
    inputs = images.reshape(-1, FLAT_SIZE).astype(np.float32) / np.float32(255.0)
    targets = np.eye(CLASS_COUNT, dtype=np.float32)[labels]
    return Split(inputs=inputs, targets=targets)
