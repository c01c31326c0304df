"""What the trust stage fits and chooses on: model features of digits and non-digits.

Fitting uses the training split only (clean and transformed digits, and the synthetic non-digits
cut from them); choosing uses the validation split (clean digits, the robustness validation
columns, and the non-digit validation set of ``python -m training.robustness``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from service.inference.preprocessing import has_ink
from training.detector import Features
from training.distortions import COLUMNS
from training.graph import activations
from training.negatives import FITTING_ONLY_KINDS, KINDS, non_digits
from training.robust import ROBUST_VALIDATION_IMAGES, ROBUST_VALIDATION_SEED
from training.robustness import NON_DIGIT_SEED, NON_DIGITS_PER_KIND, transformed_inputs
from training.splits import Splits

FIT_DIGITS = 20_000
FIT_TRANSFORMED_DIGITS = 8_000
FIT_TRANSFORM_SEED = 5
FIT_NON_DIGITS_PER_KIND = 5_000
FIT_NON_DIGIT_SEED = 11
# A run on fewer images (--limit) makes at most one fitting input per this many of them, so it
# stays quick; the full run's 50,000 training images allow every count above.
QUICK_RUN_SHARE = 6
FIT_KINDS = KINDS + FITTING_ONLY_KINDS
# Counted twice when fitting: the kinds that look like what people really send that is not a
# digit (noise, dots, shapes, strokes), which the head found hardest, and their extra geometry.
EMPHASISED_KINDS = ("noise", "dots", "shapes", "strokes", "outlines", "lines", "curves")
EMPHASIS = 2


@dataclass(frozen=True)
class Evidence:
    """Model features for the digits and non-digits of one purpose (fitting or choosing)."""

    digits: Features
    labels: np.ndarray
    transformed: dict[str, Features]
    non_digits: dict[str, Features]
    non_digits_inked: dict[str, np.ndarray] = field(default_factory=dict)


def features(onnx_bytes: bytes, images: np.ndarray) -> Features:
    """Logits and hidden activations of the exported model for uint8 images."""
    return Features(*activations(onnx_bytes, images))


def fitting_evidence(onnx_bytes: bytes, splits: Splits) -> Evidence:
    """Training images only: clean and transformed digits, synthetic non-digits cut from them."""
    images, labels = splits.train_images, splits.train.labels
    chosen = np.random.default_rng(FIT_TRANSFORM_SEED).permutation(len(images))
    transformed = transformed_inputs(
        images[chosen[: _scaled(FIT_TRANSFORMED_DIGITS, images)]], FIT_TRANSFORM_SEED, COLUMNS[1:]
    )
    made = non_digits(
        images, labels, _scaled(FIT_NON_DIGITS_PER_KIND, images), FIT_NON_DIGIT_SEED, FIT_KINDS
    )
    return Evidence(
        features(onnx_bytes, images[chosen[:FIT_DIGITS]]),
        labels[chosen[:FIT_DIGITS]],
        {name: features(onnx_bytes, inputs) for name, inputs in transformed.items()},
        {name: features(onnx_bytes, inputs) for name, inputs in made.items()},
    )


def fitting_copies(kind: str) -> int:
    """How many times a fitting non-digit of this kind is counted in the head's training set."""
    return EMPHASIS if kind in EMPHASISED_KINDS else 1


def validation_evidence(onnx_bytes: bytes, splits: Splits) -> Evidence:
    """The validation split: clean digits, the robustness validation columns, non-digits."""
    images = splits.validation_images
    transformed = transformed_inputs(
        images[:ROBUST_VALIDATION_IMAGES], ROBUST_VALIDATION_SEED, COLUMNS[1:]
    )
    made = non_digits(
        images, splits.validation.labels, _scaled(NON_DIGITS_PER_KIND, images), NON_DIGIT_SEED
    )
    return Evidence(
        features(onnx_bytes, images),
        splits.validation.labels,
        {name: features(onnx_bytes, inputs) for name, inputs in transformed.items()},
        {name: features(onnx_bytes, inputs) for name, inputs in made.items()},
        {name: np.array([has_ink(image) for image in inputs]) for name, inputs in made.items()},
    )


def _scaled(count: int, images: np.ndarray) -> int:
    """``count``, or fewer for quick runs: one per ``QUICK_RUN_SHARE`` images (at least 20)."""
    return min(count, max(20, len(images) // QUICK_RUN_SHARE))
