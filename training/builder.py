"""Build and compile a Keras model from an architecture spec, configured as the notebook does."""

from __future__ import annotations

from typing import Any

import keras

from training.architectures import BATCH_NORMALIZATION, DENSE, DROPOUT, Architecture, Layer
from training.losses import KERAS2_EPSILON, KERAS3_LOSS, LOSSES
from training.splits import FLAT_SIZE

OPTIMIZER = "adam"
LOSS = "categorical_crossentropy"
METRICS = ("accuracy",)


@keras.saving.register_keras_serializable(package="mnist_mlp")
def keras2_clipped_crossentropy(targets: Any, probabilities: Any) -> Any:
    """Keras 2's ``categorical_crossentropy(from_logits=False)``: renormalise, clip, log.

    Keras 3 finds the logits behind a softmax output and computes the loss from them, so it
    never saturates; this is the older arithmetic, whose clip has zero gradient.
    """
    probabilities = probabilities / keras.ops.sum(probabilities, axis=-1, keepdims=True)
    clipped = keras.ops.clip(probabilities, KERAS2_EPSILON, 1.0 - KERAS2_EPSILON)
    return -keras.ops.sum(targets * keras.ops.log(clipped), axis=-1)


def build_model(
    architecture: Architecture,
    loss: str = KERAS3_LOSS,
    optimizer: keras.optimizers.Optimizer | str = OPTIMIZER,
    label_smoothing: float = 0.0,
) -> keras.Sequential:
    """A compiled Sequential model (default: Adam with Keras defaults, cross-entropy, accuracy).

    ``label_smoothing`` (Keras 3 loss only) trains towards 1 - s on the true digit and s / 10
    elsewhere.
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose from {', '.join(LOSSES)}")
    if not 0.0 <= label_smoothing < 1.0 or (label_smoothing and loss != KERAS3_LOSS):
        raise ValueError(
            f"label_smoothing must be in [0, 1) and needs the {KERAS3_LOSS} loss, "
            f"got {label_smoothing} with {loss}"
        )
    model = keras.Sequential(name=architecture.name)
    model.add(keras.Input(shape=(FLAT_SIZE,), name="pixels"))
    counts = {DENSE: 0, DROPOUT: 0, BATCH_NORMALIZATION: 0}
    for layer in architecture.layers:
        counts[layer.kind] += 1
        model.add(_keras_layer(layer, f"{layer.kind}_{counts[layer.kind]}"))
    model.compile(
        optimizer=optimizer,
        loss=_loss(loss, label_smoothing),
        metrics=list(METRICS),
    )
    return model


def _loss(loss: str, label_smoothing: float) -> Any:
    """What ``compile`` gets for a loss name: Keras' by name, or an object when it has settings."""
    if loss != KERAS3_LOSS:
        return keras2_clipped_crossentropy
    if label_smoothing:
        return keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
    return LOSS


def _keras_layer(layer: Layer, name: str) -> keras.layers.Layer:
    """The Keras layer a spec describes."""
    if layer.kind == DENSE:
        return keras.layers.Dense(
            layer.units,
            activation=layer.activation,
            kernel_initializer=keras.initializers.get(
                {
                    "class_name": layer.initializer.class_name,
                    "config": dict(layer.initializer.arguments),
                }
            ),
            name=name,
        )
    if layer.kind == DROPOUT:
        return keras.layers.Dropout(layer.rate, name=name)
    if layer.kind == BATCH_NORMALIZATION:
        return keras.layers.BatchNormalization(name=name)
    raise ValueError(f"unknown layer kind {layer.kind!r}")
