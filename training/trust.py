"""The stage after export: calibrate the probabilities and add ``digit_score``, on validation only.

Runs inside every training run (``training.pipeline``) and alone on an exported model::

    python -m training.calibrate models/mnist_mlp.onnx

Fitted on MNIST's training images (the head) and validation split (temperature, choice of
detector, threshold); the test set is touched once, at the end, for the card. Non-digits are the
project's own (``training.negatives``): never other datasets, fonts or letters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from training import detector
from training.calibration import (
    calibration_figures,
    fit_temperature,
    reliability,
    selective_prediction,
    softmax,
)
from training.detector import Features
from training.evidence import (
    EMPHASIS,
    Evidence,
    features,
    fitting_copies,
    fitting_evidence,
    validation_evidence,
)
from training.graph import Head, activations, with_temperature_and_head
from training.splits import Splits

HEAD_SEED = 7
PENULTIMATE_UNITS = 32
PARITY_TOLERANCE = 1e-5
HEAD_APPROACH = "score head (outlier exposure)"


@dataclass(frozen=True)
class Trust:
    """The edited model and everything the card says about it."""

    onnx_bytes: bytes
    temperature: float
    head: Head
    threshold: float
    calibration: dict
    digit_score: dict
    reliability: dict = field(repr=False)
    score_samples: dict = field(repr=False)


def _joined(parts: list[Features]) -> Features:
    return Features(
        np.concatenate([part.logits for part in parts]),
        np.concatenate([part.hidden for part in parts]),
    )


def compare(temperature: float, fit: Evidence, validation: Evidence) -> tuple[list[dict], Head]:
    """Every candidate score on the validation non-digits; returns the table and the head."""
    penultimate = slice(fit.digits.hidden.shape[1] - PENULTIMATE_UNITS, None)
    head = detector.train_head(
        _joined([fit.digits, *fit.transformed.values()]),
        _joined(
            [found for kind, found in fit.non_digits.items() for _ in range(fitting_copies(kind))]
        ),
        HEAD_SEED,
    )
    candidates = {
        "max softmax (calibrated)": detector.max_softmax(temperature),
        "energy": detector.energy(temperature),
        "Mahalanobis, penultimate layer": detector.mahalanobis(fit.digits, fit.labels, penultimate),
        "10-NN cosine, penultimate layer": detector.nearest_neighbours(fit.digits, penultimate),
        HEAD_APPROACH: detector.head_scorer(head),
    }
    return [_score_row(name, scorer, validation) for name, scorer in candidates.items()], head


def _score_row(name: str, scorer: detector.Scorer, validation: Evidence) -> dict:
    """AUROC and rejection at the threshold accepting ``ACCEPTANCE`` of clean validation digits."""
    digits = scorer(validation.digits.logits, validation.digits.hidden)
    threshold = detector.acceptance_threshold(digits)
    negatives = {
        kind: scorer(found.logits, found.hidden) for kind, found in validation.non_digits.items()
    }
    every = np.concatenate(list(negatives.values()))
    transformed = [
        np.mean(scorer(found.logits, found.hidden) >= threshold)
        for found in validation.transformed.values()
    ]
    return {
        "approach": name,
        "auroc": detector.auroc(digits, every),
        "rejected": float(np.mean(every < threshold)),
        "rejected_by_kind": {kind: float(np.mean(v < threshold)) for kind, v in negatives.items()},
        "transformed_digits_accepted": float(np.mean(transformed)),
        "lowest_transformed_column_accepted": float(np.min(transformed)),
        "score_threshold": threshold,
    }


def calibrate(onnx_bytes: bytes, splits: Splits, suite: dict[str, np.ndarray] | None) -> Trust:
    """Fit T and the head, choose on validation, then measure once on test and the suite."""
    fit = fitting_evidence(onnx_bytes, splits)
    validation = validation_evidence(onnx_bytes, splits)
    temperature = fit_temperature(validation.digits.logits, validation.labels)
    comparison, head = compare(temperature, fit, validation)
    best = max(comparison, key=lambda row: (row["rejected"], row["auroc"]))
    shipped = next(row for row in comparison if row["approach"] == HEAD_APPROACH)
    head = detector.centred_on_threshold(head, _probability(shipped["score_threshold"]))
    edited = with_temperature_and_head(onnx_bytes, temperature, head)
    test = features(onnx_bytes, splits.test_images)
    suite_features = {name: features(onnx_bytes, inputs) for name, inputs in (suite or {}).items()}
    return Trust(
        edited,
        temperature,
        head,
        detector.SHIPPED_THRESHOLD,
        _calibration_section(temperature, validation, test, splits, suite_features),
        {
            **_digit_score_section(
                comparison, best["approach"], head, validation, test, suite_features
            ),
            "fitted_on": fitted_on(fit),
        },
        _reliability_data(temperature, validation, test, splits),
        _score_samples(head, validation),
    )


def fitted_on(fit: Evidence) -> str:
    """What the head was trained on, in words, for the card: counts, kinds, seed and epochs."""
    transformed = sum(len(found.logits) for found in fit.transformed.values())
    emphasised = [kind for kind in fit.non_digits if fitting_copies(kind) > 1]
    made = sum(len(found.logits) for found in fit.non_digits.values())
    return (
        f"{len(fit.digits.logits):,} clean and {transformed:,} transformed MNIST training digits "
        f"({len(fit.transformed)} robustness-suite columns) against {made:,} synthetic "
        f"non-digits of {len(fit.non_digits)} kinds ({', '.join(fit.non_digits)})"
        + (f", with {', '.join(emphasised)} counted {EMPHASIS} times" if emphasised else "")
        + f"; seed {HEAD_SEED}, {detector.HEAD_EPOCHS} epochs"
    )


def _probability(score: float) -> float:
    """The head's raw output is already a sigmoid in (0, 1); keep it strictly inside."""
    return float(np.clip(score, 1e-6, 1 - 1e-6))


def _calibration_section(
    temperature: float,
    validation: Evidence,
    test: Features,
    splits: Splits,
    suite: dict[str, Features],
) -> dict:
    """ECE, NLL, Brier before and after, and selective prediction, per set."""
    test_labels = splits.test.labels
    sets = {
        "validation": (validation.digits.logits, validation.labels),
        "test": (test.logits, test_labels),
        **{
            f"suite: {name}": (found.logits, test_labels[: len(found.logits)])
            for name, found in suite.items()
        },
    }
    return {
        "method": "temperature scaling: probabilities = softmax(logits / T), inside the graph",
        "temperature": temperature,
        "fitted_on": "the validation split (NLL, golden-section search on log T)",
        "ece_bins": 15,
        "figures": {
            name: {
                "before": calibration_figures(softmax(logits), labels),
                "after": calibration_figures(softmax(logits, temperature), labels),
            }
            for name, (logits, labels) in sets.items()
        },
        "selective_prediction": {
            "test_before": selective_prediction(softmax(test.logits), test_labels),
            "test_after": selective_prediction(softmax(test.logits, temperature), test_labels),
        },
    }


def _digit_score_section(
    comparison: list[dict],
    best: str,
    head: Head,
    validation: Evidence,
    test: Features,
    suite: dict[str, Features],
) -> dict:
    """The shipped rule, the comparison, and acceptance of real digits on test (once)."""
    threshold = detector.SHIPPED_THRESHOLD

    def accepted(found: Features) -> float:
        return float(np.mean(head.scores(found.hidden) >= threshold))

    rejected = {
        kind: float(
            np.mean(~validation.non_digits_inked[kind] | (head.scores(found.hidden) < threshold))
        )
        for kind, found in validation.non_digits.items()
    }

    return {
        "output": "digit_score",
        "threshold": threshold,
        "rule": "is_digit = the image has ink (preprocessing) and digit_score >= threshold",
        "approach": HEAD_APPROACH,
        "head": f"ReLU layers of {detector.HEAD_UNITS} units and a sigmoid, on the scaled pixels "
        "and every hidden activation of the trained layers (which stay as trained)",
        "threshold_chosen": f"the score that accepts {100 * detector.ACCEPTANCE:g}% of the "
        f"{len(validation.labels):,} clean validation digits "
        "(the head's output bias is shifted so that this score reads 0.5)",
        "comparison": comparison,
        "best_on_validation": best,
        "validation": {
            "clean_digits_accepted": accepted(validation.digits),
            "transformed_digits_accepted": {
                n: accepted(f) for n, f in validation.transformed.items()
            },
            "non_digits_rejected": rejected,
        },
        "acceptance_target": detector.ACCEPTANCE,
        "non_digit_rejection": float(np.mean(list(rejected.values()))),
        "non_digits_made_from": "the validation images (python -m training.robustness: the "
        "non-digit column), by training/negatives.py; no ink or digit_score under the threshold",
        "test": {
            "clean_digits_accepted": accepted(test),
            "suite_digits_accepted": {name: accepted(found) for name, found in suite.items()},
        },
    }


def _reliability_data(
    temperature: float, validation: Evidence, test: Features, splits: Splits
) -> dict:
    return {
        name: {
            stage: reliability(softmax(logits, t), labels)
            for stage, t in (("before", 1.0), ("after", temperature))
        }
        for name, (logits, labels) in (
            ("validation", (validation.digits.logits, validation.labels)),
            ("test", (test.logits, splits.test.labels)),
        )
    }


def _score_samples(head: Head, validation: Evidence) -> dict:
    return {
        "clean validation digits": head.scores(validation.digits.hidden),
        "transformed validation digits": head.scores(
            np.concatenate([found.hidden for found in validation.transformed.values()])
        ),
        **{kind: head.scores(found.hidden) for kind, found in validation.non_digits.items()},
    }


def check_parity(trust: Trust, original: bytes, images: np.ndarray) -> dict:
    """The edited graph against the numpy reference on the original graph's activations."""
    import onnxruntime

    logits, hidden = activations(original, images)
    session = onnxruntime.InferenceSession(trust.onnx_bytes, providers=["CPUExecutionProvider"])
    probabilities, scores = session.run(["probabilities", "digit_score"], {"image": images})
    difference = max(
        float(np.max(np.abs(probabilities - softmax(logits, trust.temperature)))),
        float(np.max(np.abs(scores - trust.head.scores(hidden)))),
    )
    if difference > PARITY_TOLERANCE:
        raise ValueError(f"edited graph differs from the numpy reference by {difference:.3g}")
    return {
        "images": len(images),
        "max_abs_difference": difference,
        "tolerance": PARITY_TOLERANCE,
        "argmax_identical": bool(np.all(probabilities.argmax(1) == logits.argmax(1))),
    }
