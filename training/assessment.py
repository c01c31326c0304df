"""A robust run's candidates: the selection score on validation, the robustness suite on test.

The selection score (``robust.selection_score``) only ever sees validation images; the suite on
the 10,000 test images is computed once per candidate, for the card, after the choice is made
possible, and never feeds back into it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.fit import PREDICTION_BATCH_SIZE, Candidate
from training.robust import robust_validation, selection_score
from training.robustness import accuracies, mean_without_clean, transformed_inputs
from training.splits import FLAT_SIZE, Splits


@dataclass(frozen=True)
class Robustness:
    """Per candidate name: validation scores used to choose, and the suite's test accuracies."""

    validation: dict[str, dict[str, float]]
    test: dict[str, dict[str, float]]
    test_images: int

    def selection(self, name: str) -> float:
        """The score a candidate is chosen by (validation only)."""
        return self.validation[name]["selection_score"]


def keras_predictor(candidate: Candidate) -> callable:
    """uint8 [N, 28, 28] -> probabilities, as the exported graph computes them (x / 255)."""

    def predict(images: np.ndarray) -> np.ndarray:
        inputs = images.reshape(-1, FLAT_SIZE).astype(np.float32) / np.float32(255.0)
        return candidate.trained.model.predict(inputs, batch_size=PREDICTION_BATCH_SIZE, verbose=0)

    return predict


def assess(
    candidates: list[Candidate],
    splits: Splits,
    robust_set: tuple[np.ndarray, np.ndarray] | None = None,
    test_inputs: dict[str, np.ndarray] | None = None,
) -> Robustness:
    """Validation scores (clean, robust, selection) and the test suite, for every candidate.

    ``test_inputs`` are the suite's model inputs (``transformed_inputs`` of the first N test
    images, N < 10,000 in quick runs); None: all test images.
    """
    robust_inputs, robust_labels = robust_set or robust_validation(splits)
    test_inputs = test_inputs or transformed_inputs(splits.test_images)
    test_labels = splits.test.labels[: len(next(iter(test_inputs.values())))]
    validation, test = {}, {}
    for candidate in candidates:
        probabilities = candidate.trained.model.predict(
            robust_inputs, batch_size=PREDICTION_BATCH_SIZE, verbose=0
        )
        robust = float(np.mean(probabilities.argmax(axis=1) == robust_labels))
        clean = candidate.validation.accuracy
        validation[candidate.name] = {
            "clean_accuracy": clean,
            "robust_accuracy": robust,
            "selection_score": selection_score(clean, robust),
        }
        scores = accuracies(keras_predictor(candidate), test_inputs, test_labels)
        test[candidate.name] = {**scores, "mean_without_clean": mean_without_clean(scores)}
    return Robustness(validation, test, len(test_labels))


def per_class_accuracy(candidate: Candidate, labels: np.ndarray) -> list[float]:
    """Test accuracy of each digit 0-9."""
    predicted = candidate.test_probabilities.argmax(axis=1)
    return [float(np.mean(predicted[labels == digit] == digit)) for digit in range(10)]


def confusion_matrix(candidate: Candidate, labels: np.ndarray) -> list[list[int]]:
    """Counts [true digit][predicted digit] on the test set."""
    matrix = np.zeros((10, 10), dtype=np.int64)
    np.add.at(matrix, (labels, candidate.test_probabilities.argmax(axis=1)), 1)
    return matrix.tolist()
