"""The three architectures: layer order, units, dropout, initialisers, exact parameter counts."""

from __future__ import annotations

import pytest

from training.architectures import (
    ARCHITECTURES,
    BATCH_NORMALIZATION,
    DENSE,
    DROPOUT,
    get_architecture,
)

EXPECTED_LAYERS = {
    "model_1": [
        (DENSE, 512), (DROPOUT, 0.5), (DENSE, 128), (DROPOUT, 0.5), (DENSE, 10),
    ],
    "model_2": [
        (DENSE, 512), (DENSE, 128), (DROPOUT, 0.5), (DENSE, 64), (DROPOUT, 0.5), (DENSE, 10),
    ],
    "model_3": [
        (DENSE, 512), (DENSE, 128), (DROPOUT, 0.5), (DENSE, 128), (DENSE, 64), (DENSE, 32),
        (DROPOUT, 0.5), (BATCH_NORMALIZATION, None), (DENSE, 10),
    ],
}  # fmt: skip
EXPECTED_INITIALIZERS = {
    "model_1": [("RandomNormal", 0.039), ("RandomNormal", 0.55), ("GlorotUniform", None)],
    "model_2": [
        ("RandomNormal", 0.039), ("RandomNormal", 0.55), ("RandomNormal", 0.55),
        ("GlorotUniform", None),
    ],
    "model_3": [("HeNormal", None)] * 5 + [("GlorotUniform", None)],
}  # fmt: skip
EXPECTED_PARAMETERS = {
    "model_1": (468_874, 468_874),
    "model_2": (476_490, 476_490),
    "model_3": (494_890, 494_826),
}


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_layers_in_order(name: str) -> None:
    layers = get_architecture(name).layers

    found = [(layer.kind, layer.units if layer.kind == DENSE else layer.rate) for layer in layers]

    assert found == EXPECTED_LAYERS[name]


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_activations_relu_then_softmax(name: str) -> None:
    activations = [layer.activation for layer in get_architecture(name).dense_layers]

    assert activations == ["relu"] * (len(activations) - 1) + ["softmax"]


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_initialisers_are_declared(name: str) -> None:
    dense_layers = get_architecture(name).dense_layers

    found = [
        (layer.initializer.class_name, layer.initializer.arguments.get("stddev"))
        for layer in dense_layers
    ]

    assert found == EXPECTED_INITIALIZERS[name]
    assert all(layer.initializer.arguments.get("mean", 0.0) == 0.0 for layer in dense_layers)


def test_unknown_architecture_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown model 'model_9'; choose from model_1"):
        get_architecture("model_9")


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_keras_parameter_counts_match_the_notebook(name: str) -> None:
    from training.builder import build_model

    model = build_model(get_architecture(name))

    trainable = sum(int(weight.numpy().size) for weight in model.trainable_weights)
    assert (model.count_params(), trainable) == EXPECTED_PARAMETERS[name]


@pytest.mark.slow
def test_keras_layers_carry_the_declared_initialisers() -> None:
    import keras

    from training.builder import build_model

    model = build_model(get_architecture("model_2"))

    configs = [
        layer.kernel_initializer.get_config()
        for layer in model.layers
        if hasattr(layer, "kernel_initializer")
    ]
    assert [config.get("stddev") for config in configs] == [0.039, 0.55, 0.55, None]
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.001)
    assert model.loss == "categorical_crossentropy"


@pytest.mark.slow
@pytest.mark.parametrize(("loss", "smoothing"), [("keras2-clipped", 0.1), ("keras3", 1.0)])
def test_label_smoothing_is_refused_outside_the_keras3_loss_or_range(
    loss: str, smoothing: float
) -> None:
    from training.builder import build_model

    with pytest.raises(ValueError, match="label_smoothing must be in"):
        build_model(get_architecture("model_1"), loss=loss, label_smoothing=smoothing)
