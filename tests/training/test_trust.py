"""Calibration and the reject option: the figures' definitions, the graph edits on the shipped
model, the synthetic non-digits, and the shipped model's card against what it really does.

onnxruntime and numpy only (no TensorFlow): the head is trained in ``training.calibrate``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest

from service.inference.preprocessing import has_ink
from tests.support.mnist import load_test_set
from training.calibration import (
    expected_calibration_error,
    fit_temperature,
    selective_prediction,
    softmax,
)
from training.detector import HEAD_UNITS, acceptance_threshold, auroc, centred_on_threshold
from training.distortions import COLUMNS
from training.evidence import FIT_KINDS, FIT_NON_DIGITS_PER_KIND, FIT_TRANSFORMED_DIGITS
from training.graph import Head, activations, with_temperature_and_head, without_edits
from training.negatives import FITTING_ONLY_KINDS, KINDS, non_digits
from training.trust import HEAD_SEED

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
ONNX_PATH = MODELS_DIR / "mnist_mlp.onnx"
INT8_PATH = MODELS_DIR / "mnist_mlp.int8.onnx"
MAXIMUM_TEST_ECE = 0.01


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads(ONNX_PATH.with_suffix(".json").read_text(encoding="utf-8"))


def test_the_fitted_temperature_is_the_one_that_made_the_labels() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (20_000, 10))
    labels = np.array([rng.choice(10, p=row) for row in softmax(logits, 0.6)])

    assert fit_temperature(logits, labels) == pytest.approx(0.6, abs=0.03)
    assert expected_calibration_error(softmax(logits, 0.6), labels) < 0.02
    assert expected_calibration_error(softmax(logits, 2.0), labels) > 0.1


def test_selective_prediction_keeps_the_most_confident_answers() -> None:
    probabilities = np.array([[0.95, 0.05], [0.8, 0.2], [0.6, 0.4], [0.55, 0.45]])
    labels = np.array([0, 0, 1, 0])

    table = selective_prediction(probabilities, labels)

    assert [level["coverage"] for level in table["levels"]] == [1.0, 0.5, 0.25, 0.0]
    assert table["levels"][1]["accuracy"] == 1.0 and table["levels"][3]["accuracy"] is None
    assert table["coverage_at_target"] == 0.5


def test_auroc_and_the_acceptance_threshold() -> None:
    digits = np.linspace(0.5, 1.0, 100)

    assert auroc(digits, np.full(10, 0.1)) == 1.0
    assert auroc(np.array([0.5, 0.5]), np.array([0.5])) == 0.5
    assert np.mean(digits >= acceptance_threshold(digits)) >= 0.99


def test_graph_edits_divide_the_logits_add_the_score_and_come_off_again() -> None:
    original = without_edits(ONNX_PATH.read_bytes())
    images = np.stack([np.roll(load_digit(), shift, axis=1) for shift in range(-3, 4)])
    logits, features = activations(original, images)
    rng = np.random.default_rng(1)
    head = Head(((rng.normal(0, 0.05, (features.shape[1], 8)).astype(np.float32),
                  np.zeros(8, np.float32)), (rng.normal(0, 1, (8, 1)).astype(np.float32),
                                             np.zeros(1, np.float32))))  # fmt: skip
    head = centred_on_threshold(head, 0.3)

    edited = with_temperature_and_head(original, 0.5, head)
    session = onnxruntime.InferenceSession(edited, providers=["CPUExecutionProvider"])
    probabilities, scores = session.run(["probabilities", "digit_score"], {"image": images})

    np.testing.assert_allclose(probabilities, softmax(logits, 0.5), atol=1e-5)
    np.testing.assert_allclose(scores, head.scores(features), atol=1e-5)
    assert without_edits(edited) == original


def load_digit() -> np.ndarray:
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 13:16] = 255
    return digit


@pytest.mark.parametrize(
    "kind", KINDS + FITTING_ONLY_KINDS, ids=[kind.name for kind in KINDS + FITTING_ONLY_KINDS]
)
def test_every_kind_of_non_digit_reaches_the_model_as_28x28(kind, mnist_dir: Path) -> None:
    images, labels = load_test_set(mnist_dir)

    made = non_digits(images[:200], labels[:200], 20, seed=4, kinds=(kind,))[kind.name]
    again = non_digits(images[:200], labels[:200], 20, seed=4, kinds=(kind,))[kind.name]

    assert made.shape == (20, 28, 28) and made.dtype == np.uint8
    assert np.array_equal(made, again)
    inked = [has_ink(image) for image in made]
    assert not any(inked) if kind.name == "blank" else np.mean(inked) > 0.9


def test_the_shipped_probabilities_are_calibrated_on_test(card: dict, mnist_dir: Path) -> None:
    images, labels = load_test_set(mnist_dir)
    session = onnxruntime.InferenceSession(str(ONNX_PATH), providers=["CPUExecutionProvider"])

    probabilities, scores = session.run(["probabilities", "digit_score"], {"image": images})

    ece = expected_calibration_error(probabilities, labels)
    stated = card["calibration"]["figures"]["test"]["after"]
    assert ece == pytest.approx(stated["ece"], abs=1e-4)
    assert ece <= MAXIMUM_TEST_ECE
    accepted = float(np.mean(scores >= card["digit_score"]["threshold"]))
    assert accepted == pytest.approx(card["digit_score"]["test"]["clean_digits_accepted"], abs=1e-4)
    assert accepted >= 0.98


def test_the_card_compares_approaches_and_ships_the_best(card: dict) -> None:
    rows = card["digit_score"]["comparison"]
    shipped = max(rows, key=lambda row: row["rejected"])

    assert len(rows) >= 2 and shipped["approach"] == card["digit_score"]["approach"]
    assert card["digit_score"]["validation"]["clean_digits_accepted"] >= 0.99
    assert 0.0 < card["calibration"]["temperature"] < 1.0  # label smoothing made it too unsure
    assert [o["name"] for o in card["outputs"]] == ["probabilities", "digit_score"]


def test_the_card_says_how_the_shipped_head_was_fitted_as_the_code_fits_it(card: dict) -> None:
    """Running the stage again gives this head: the card's recipe is the code's settings."""
    fitted_on = card["digit_score"]["fitted_on"]
    head_widths = [
        initializer.dims[1]
        for initializer in onnx.load(ONNX_PATH).graph.initializer
        if initializer.name.startswith("digit_head_w")
    ]

    assert f"{FIT_TRANSFORMED_DIGITS * (len(COLUMNS) - 1):,} transformed" in fitted_on
    assert f"{FIT_NON_DIGITS_PER_KIND * len(FIT_KINDS):,} synthetic non-digits" in fitted_on
    assert all(kind.name in fitted_on for kind in FIT_KINDS) and f"seed {HEAD_SEED}," in fitted_on
    assert head_widths == [*HEAD_UNITS, 1] and str(HEAD_UNITS) in card["digit_score"]["head"]


def test_the_int8_model_is_calibrated_and_scores_like_fp32(card: dict, mnist_dir: Path) -> None:
    images, labels = load_test_set(mnist_dir)
    fp32 = onnxruntime.InferenceSession(str(ONNX_PATH), providers=["CPUExecutionProvider"])
    int8 = onnxruntime.InferenceSession(str(INT8_PATH), providers=["CPUExecutionProvider"])
    chunk = slice(0, 1000)

    fp32_scores = fp32.run(["digit_score"], {"image": images[chunk]})[0]
    int8_probabilities, int8_scores = int8.run(None, {"image": images[chunk]})

    assert expected_calibration_error(int8_probabilities, labels[chunk]) <= 0.015
    threshold = card["digit_score"]["threshold"]
    assert np.mean((fp32_scores >= threshold) == (int8_scores >= threshold)) >= 0.99
