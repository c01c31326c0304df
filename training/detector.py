"""Scores of "is this a digit?", compared on the project's own non-digits, and the shipped head.

Candidates (each a function of the model's logits and hidden activations, higher = more digit-like):
the maximum softmax probability (Hendrycks & Gimpel 2017), the energy score (Liu et al. 2020),
Mahalanobis distance with class means and a tied covariance on the penultimate layer (Lee et al.
2018), cosine nearest neighbours in the penultimate layer (Sun et al. 2022), and a small head on
all hidden activations trained against synthetic non-digits (outlier exposure, Hendrycks et al.
2019). The trained dense layers are never changed; only the head is fitted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from training.calibration import softmax
from training.graph import Head

# Above the issue's 99%: MNIST test and other writers' digits sit a little lower on the score
# than the validation digits it is chosen on.
ACCEPTANCE = 0.993
HEAD_UNITS = (256, 64)
HEAD_EPOCHS = 30
HEAD_BATCH = 256
HEAD_LEARNING_RATE = 1e-3
NEIGHBOURS = 10
NEIGHBOUR_BANK = 20_000
COVARIANCE_RIDGE = 1e-6
SHIPPED_THRESHOLD = 0.5

Scorer = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Features:
    """What the model computes for some images: logits [N, 10] and hidden activations [N, F]."""

    logits: np.ndarray
    hidden: np.ndarray

    def select(self, mask: np.ndarray) -> Features:
        return Features(self.logits[mask], self.hidden[mask])


def auroc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """Area under the ROC curve: the chance a digit scores above a non-digit (ties count half)."""
    scores = np.concatenate([positives, negatives])
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = ((ends - counts + 1 + ends) / 2.0)[inverse]
    positive_ranks = ranks[: len(positives)].sum() - len(positives) * (len(positives) + 1) / 2
    return float(positive_ranks / (len(positives) * len(negatives)))


def acceptance_threshold(digit_scores: np.ndarray, acceptance: float = ACCEPTANCE) -> float:
    """The highest threshold that still accepts ``acceptance`` of these digits (score >= it)."""
    ordered = np.sort(digit_scores)
    return float(ordered[int(np.floor((1.0 - acceptance) * len(ordered)))])


def max_softmax(temperature: float) -> Scorer:
    """The returned confidence itself: the baseline every detector must beat."""
    return lambda logits, hidden: softmax(logits, temperature).max(axis=1)


def energy(temperature: float) -> Scorer:
    """``T * logsumexp(logits / T)``: the negative free energy."""

    def score(logits: np.ndarray, hidden: np.ndarray) -> np.ndarray:
        scaled = logits / temperature
        top = scaled.max(axis=1)
        return temperature * (top + np.log(np.exp(scaled - top[:, None]).sum(axis=1)))

    return score


def mahalanobis(train: Features, labels: np.ndarray, penultimate: slice) -> Scorer:
    """Minus the smallest class-conditional Mahalanobis distance, tied covariance."""
    features = train.hidden[:, penultimate].astype(np.float64)
    means = np.stack([features[labels == digit].mean(axis=0) for digit in range(10)])
    centred = features - means[labels]
    covariance = centred.T @ centred / len(features)
    covariance += COVARIANCE_RIDGE * np.trace(covariance) * np.eye(len(covariance))
    precision = np.linalg.inv(covariance)

    def score(logits: np.ndarray, hidden: np.ndarray) -> np.ndarray:
        points = hidden[:, penultimate].astype(np.float64)
        distances = [
            np.einsum("ij,jk,ik->i", points - mean, precision, points - mean) for mean in means
        ]
        return -np.min(distances, axis=0)

    return score


def nearest_neighbours(train: Features, penultimate: slice) -> Scorer:
    """Cosine similarity to the 10th nearest of 20,000 training images, penultimate layer."""
    bank = _unit(train.hidden[:NEIGHBOUR_BANK, penultimate])

    def score(logits: np.ndarray, hidden: np.ndarray) -> np.ndarray:
        points = _unit(hidden[:, penultimate])
        return np.concatenate(
            [
                -np.sort(-(points[start : start + 2000] @ bank.T), axis=1)[:, NEIGHBOURS - 1]
                for start in range(0, len(points), 2000)
            ]
        )

    return score


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / (np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-9)


def train_head(digits: Features, non_digits: Features, seed: int) -> Head:
    """A small MLP on the pixels and hidden activations, digits against synthetic non-digits.

    Binary cross-entropy with both classes weighted equally; the features' standardisation is
    folded into the first layer so the graph needs no extra nodes for it.
    """
    import keras

    inputs = np.concatenate([digits.hidden, non_digits.hidden]).astype(np.float32)
    targets = np.r_[np.ones(len(digits.hidden)), np.zeros(len(non_digits.hidden))].astype(
        np.float32
    )
    weights = np.where(
        targets == 1,
        len(targets) / (2 * len(digits.hidden)),
        len(targets) / (2 * len(non_digits.hidden)),
    )
    mean, spread = inputs.mean(axis=0), inputs.std(axis=0) + 1e-3
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((inputs.shape[1],))]
        + [keras.layers.Dense(units, activation="relu") for units in HEAD_UNITS]
        + [keras.layers.Dense(1)]
    )
    model.compile(
        keras.optimizers.Adam(HEAD_LEARNING_RATE),
        keras.losses.BinaryCrossentropy(from_logits=True),
    )
    model.fit(
        (inputs - mean) / spread,
        targets,
        sample_weight=weights,
        epochs=HEAD_EPOCHS,
        batch_size=HEAD_BATCH,
        verbose=0,
    )
    layers = [tuple(layer.get_weights()) for layer in model.layers]
    first, first_bias = layers[0]
    folded = (first / spread[:, None], first_bias - (mean / spread) @ first)
    return Head((folded, *layers[1:]))


def centred_on_threshold(head: Head, threshold: float) -> Head:
    """The same head with its output bias moved so that ``threshold`` becomes exactly 0.5."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must lie strictly between 0 and 1, got {threshold}")
    shift = np.float32(np.log(threshold / (1.0 - threshold)))
    *hidden, (weights, bias) = head.layers
    return Head((*hidden, (weights, bias - shift)))


def head_scorer(head: Head) -> Scorer:
    return lambda logits, hidden: head.scores(hidden)
