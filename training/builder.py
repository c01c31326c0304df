"""Build and compile a Keras model from an architecture spec, configured as the notebook does."""

from __future__ import annotations

import keras

from training.architectures import BATCH_NORMALIZATION, DENSE, DROPOUT, Architecture, Layer
from training.splits import FLAT_SIZE

OPTIMIZER = "adam"
LOSS = "categorical_crossentropy"
METRICS = ("accuracy",)


def build_model(architecture: Architecture) -> keras.Sequential:
    """A compiled Sequential model (Adam with Keras defaults, cross-entropy, accuracy)."""
    model = keras.Sequential(name=architecture.name)
    model.add(keras.Input(shape=(FLAT_SIZE,), name="pixels"))
    counts = {DENSE: 0, DROPOUT: 0, BATCH_NORMALIZATION: 0}
    for layer in architecture.layers:
        counts[layer.kind] += 1
        model.add(_keras_layer(layer, f"{layer.kind}_{counts[layer.kind]}"))
    model.compile(optimizer=OPTIMIZER, loss=LOSS, metrics=list(METRICS))
    return model


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
