"""Temperature scaling (Guo et al. 2017) and the figures that say whether a confidence is true.

One scalar ``T`` divides the logits before the softmax; it is fitted by negative log-likelihood on
the validation split only, so the argmax (and accuracy) never changes. Numpy only.
"""

from __future__ import annotations

import numpy as np

ECE_BINS = 15
TEMPERATURE_RANGE = (0.05, 5.0)
SEARCH_STEPS = 60
CONFIDENCE_LEVELS = (0.5, 0.7, 0.9, 0.99)
TARGET_ACCURACY = 0.995


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature``."""
    scaled = logits / temperature
    exponentials = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean -log p(true class), with p floored at 1e-12."""
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.maximum(picked, 1e-12))))


def brier(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean squared distance to the one-hot label, summed over the classes."""
    one_hot = np.eye(probabilities.shape[1])[labels]
    return float(np.mean(np.sum((probabilities - one_hot) ** 2, axis=1)))


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> list[dict]:
    """Per equal-width confidence bin: images, mean confidence, accuracy (empty bins left out)."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    rows = []
    for position in range(bins):
        chosen = index == position
        if chosen.any():
            rows.append(
                {
                    "low": float(edges[position]),
                    "high": float(edges[position + 1]),
                    "images": int(chosen.sum()),
                    "confidence": float(confidence[chosen].mean()),
                    "accuracy": float(correct[chosen].mean()),
                }
            )
    return rows


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """ECE over 15 equal-width bins: the image-weighted mean |accuracy - confidence|."""
    rows = reliability(probabilities, labels)
    return float(
        sum(row["images"] * abs(row["accuracy"] - row["confidence"]) for row in rows) / len(labels)
    )


def calibration_figures(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """ECE, NLL, Brier and accuracy of one set of probabilities."""
    return {
        "ece": expected_calibration_error(probabilities, labels),
        "nll": negative_log_likelihood(probabilities, labels),
        "brier": brier(probabilities, labels),
        "accuracy": float(np.mean(probabilities.argmax(axis=1) == labels)),
    }


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising validation NLL: golden-section search on log T.

    NLL is convex in 1/T, so the one-dimensional search cannot stop in a wrong local minimum.
    """
    if len(logits) != len(labels) or not len(labels):
        raise ValueError("logits and labels must be non-empty and of the same length")

    def loss(log_temperature: float) -> float:
        return negative_log_likelihood(softmax(logits, float(np.exp(log_temperature))), labels)

    low, high = (float(np.log(bound)) for bound in TEMPERATURE_RANGE)
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    for _ in range(SEARCH_STEPS):
        left, right = high - ratio * (high - low), low + ratio * (high - low)
        if loss(left) < loss(right):
            high = right
        else:
            low = left
    return round(float(np.exp((low + high) / 2.0)), 4)


def selective_prediction(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, object]:
    """Coverage and accuracy of the answers kept at each confidence level, and the coverage at
    which the most confident answers reach 99.5% accuracy."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    levels = []
    for level in CONFIDENCE_LEVELS:
        kept = confidence >= level
        levels.append(
            {
                "confidence_at_least": level,
                "coverage": float(kept.mean()),
                "accuracy": float(correct[kept].mean()) if kept.any() else None,
            }
        )
    order = np.argsort(-confidence, kind="stable")
    running = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    reaching = np.flatnonzero(running >= TARGET_ACCURACY)
    coverage = float((reaching[-1] + 1) / len(order)) if len(reaching) else 0.0
    return {"levels": levels, "target_accuracy": TARGET_ACCURACY, "coverage_at_target": coverage}
