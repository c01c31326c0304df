"""The notebook study's arithmetic, its clipped loss, and the second initialiser reading."""

from __future__ import annotations

import numpy as np
import pytest

from training.architectures import (
    NARROW_FIRST,
    NARROW_NORMAL,
    WIDE_EVERYWHERE,
    WIDE_NORMAL,
    get_architecture,
    with_reading,
)
from training.study import SATURATED_LOSS, has_signature, loss_per_error


def test_the_notebooks_printed_losses_have_the_signature() -> None:
    assert pytest.approx(16.118, abs=5e-4) == SATURATED_LOSS
    assert has_signature(9.8416, 0.3886)
    assert has_signature(5.4056, 0.6646)
    assert has_signature(12.637, 0.2158)
    assert not has_signature(0.0834, 0.9796)
    assert loss_per_error(1.0, 1.0) is None


def test_wide_everywhere_gives_the_first_hidden_layer_0_55_too() -> None:
    model_2 = get_architecture("model_2")

    wide = with_reading(model_2, WIDE_EVERYWHERE)

    assert model_2.dense_layers[0].initializer == NARROW_NORMAL
    assert [layer.initializer for layer in wide.dense_layers[:-1]] == [WIDE_NORMAL] * 3
    assert [layer.units for layer in wide.layers] == [layer.units for layer in model_2.layers]
    assert with_reading(model_2, NARROW_FIRST) is model_2
    assert with_reading(get_architecture("model_3"), WIDE_EVERYWHERE) == get_architecture("model_3")


def test_an_unknown_reading_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown initialiser reading 'both'"):
        with_reading(get_architecture("model_1"), "both")


@pytest.mark.slow
def test_keras2_clipped_loss_costs_16_118_and_no_gradient_on_a_saturated_mistake() -> None:
    tf = pytest.importorskip("tensorflow")
    from training.builder import keras2_clipped_crossentropy

    targets = tf.constant([[0.0, 1.0], [1.0, 0.0]])
    logits = tf.Variable([[30.0, -30.0], [30.0, -30.0]])
    with tf.GradientTape() as tape:
        losses = keras2_clipped_crossentropy(targets, tf.nn.softmax(logits))
        total = tf.reduce_sum(losses)

    gradient = tape.gradient(total, logits)
    np.testing.assert_allclose(losses.numpy(), [SATURATED_LOSS, 0.0], atol=1e-4)
    np.testing.assert_array_equal(gradient.numpy(), np.zeros((2, 2)))


def synthetic_run(model: str, reading: str, loss: str, ratio: float, accuracy: float) -> dict:
    return {"model": model, "reading": reading, "loss": loss, "seed": 42,
            "validation_loss_per_error": [ratio], "test_accuracy": accuracy}  # fmt: skip


@pytest.mark.slow
def test_the_conclusion_names_the_reading_whose_clipped_runs_saturate() -> None:
    from training.card_sections import study_conclusion

    runs = [
        synthetic_run(model, reading, loss, ratio, accuracy)
        for model in ("model_1", "model_2")
        for reading, loss, ratio, accuracy in (
            (NARROW_FIRST, "keras2-clipped", 3.5, 0.977),
            (NARROW_FIRST, "keras3", 3.4, 0.978),
            (WIDE_EVERYWHERE, "keras2-clipped", 15.9, 0.62),
            (WIDE_EVERYWHERE, "keras3", 3.0, 0.95),
        )
    ]
    study = {
        "readings": {NARROW_FIRST: "0.039 then 0.55", WIDE_EVERYWHERE: "0.55 everywhere"},
        "notebook_first_epoch": {"model_1": {"val_loss": 9.8416, "val_accuracy": 0.3886}},
        "notebook": {"model_1": {"test_accuracy": 0.6646}, "model_2": {"test_accuracy": 0.467}},
        "runs": runs,
    }

    text = study_conclusion(study)

    assert f"**{WIDE_EVERYWHERE}** (0.55 everywhere)" in text
    assert "end within 0.10 points of each other" in text
