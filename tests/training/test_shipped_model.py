"""The committed model in models/: its card is true, it scores at least 99% on MNIST's test set,
and the robustness suite on part of the test set agrees with the card.

Reads the IDX files with the tests' small numpy reader and runs ONNX Runtime only: no TensorFlow
(``training.robustness`` needs only numpy, Pillow, onnxruntime and the service's preprocessing).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from tests.support.mnist import load_test_set

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
ONNX_PATH = MODELS_DIR / "mnist_mlp.onnx"
CARD_PATH = MODELS_DIR / "mnist_mlp.json"
MINIMUM_TEST_ACCURACY = 0.99
SUITE_IMAGES = 1000
INT8_PATH = MODELS_DIR / "mnist_mlp.int8.onnx"
INT8_MAX_ACCURACY_LOSS = 0.002
ONNX_TYPES = {"UINT8": "tensor(uint8)", "FP32": "tensor(float)"}


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads(CARD_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def session() -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(str(ONNX_PATH), providers=["CPUExecutionProvider"])


def test_sha256_matches_the_card(card: dict) -> None:
    assert hashlib.sha256(ONNX_PATH.read_bytes()).hexdigest() == card["sha256"]


def test_signature_matches_the_card(card: dict, session: onnxruntime.InferenceSession) -> None:
    for declared, actual in ((card["inputs"], session.get_inputs()),
                             (card["outputs"], session.get_outputs())):  # fmt: skip
        assert [(t["name"], ONNX_TYPES[t["datatype"]]) for t in declared] == [
            (t.name, t.type) for t in actual
        ]
        assert [t["shape"][1:] for t in declared] == [t.shape[1:] for t in actual]


def test_readme_shows_the_same_model(card: dict) -> None:
    readme = (MODELS_DIR / "README.md").read_text(encoding="utf-8")

    assert card["sha256"] in readme
    for plot in (MODELS_DIR / "plots").glob("*.png"):
        assert f"plots/{plot.name}" in readme


def test_test_set_accuracy_is_the_cards_and_at_least_99_percent(
    card: dict, session: onnxruntime.InferenceSession, mnist_dir: Path
) -> None:
    images, labels = load_test_set(mnist_dir)

    (probabilities,) = session.run(["probabilities"], {"image": images})

    accuracy = float(np.mean(probabilities.argmax(axis=1) == labels))
    assert len(labels) == 10_000
    assert accuracy == pytest.approx(card["metrics"]["test_accuracy"], abs=1e-6)
    assert accuracy >= MINIMUM_TEST_ACCURACY
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_the_optional_int8_model_is_true_to_its_card_and_within_0_2_points(
    card: dict, mnist_dir: Path
) -> None:
    """Shipped beside the fp32 model only because it is faster and loses at most 0.2 points.

    Dynamic quantisation scales activations per call, so an image's answer can depend on its
    batch: the card's figure is measured, as here, in batches of 1,000 test images.
    """
    int8_card = json.loads(INT8_PATH.with_suffix(".json").read_text(encoding="utf-8"))
    assert hashlib.sha256(INT8_PATH.read_bytes()).hexdigest() == int8_card["sha256"]
    assert int8_card["version"] == str(int(card["version"]) + 1)
    images, labels = load_test_set(mnist_dir)
    session = onnxruntime.InferenceSession(str(INT8_PATH), providers=["CPUExecutionProvider"])
    digits = np.concatenate(
        [
            session.run(["probabilities"], {"image": images[start : start + 1000]})[0].argmax(1)
            for start in range(0, len(images), 1000)
        ]
    )
    accuracy = float(np.mean(digits == labels))
    assert accuracy == pytest.approx(int8_card["metrics"]["test_accuracy"], abs=1e-6)
    assert card["metrics"]["test_accuracy"] - accuracy <= INT8_MAX_ACCURACY_LOSS


def test_the_card_states_the_robustness_suite_it_was_measured_with(card: dict) -> None:
    suite = card["robustness"]["test_suite"][card["architecture"]]

    assert card["robustness"]["test_images"] == 10_000
    assert min(value for name, value in suite.items() if name != "mean_without_clean") >= 0.9
    assert "robustness validation" in card["training"]["selection"]


def test_the_shipped_model_reads_transformed_digits_through_the_service(
    card: dict, mnist_dir: Path
) -> None:
    """The suite on the first 1,000 test images (the harder end of MNIST's test set), through
    the service's own preprocessing: close to the card's figures, column by column."""
    from training.robustness import accuracies, onnx_predictor, transformed_inputs

    images, labels = load_test_set(mnist_dir)
    inputs = transformed_inputs(images[:SUITE_IMAGES])

    scores = accuracies(onnx_predictor(ONNX_PATH), inputs, labels[:SUITE_IMAGES])

    stated = card["robustness"]["test_suite"][card["architecture"]]
    for column, accuracy in scores.items():
        assert accuracy >= stated[column] - 0.03, column
