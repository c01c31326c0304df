"""Training keeps, per model, the weights of its best epoch on the validation split."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from training.fit import KeepBestValidationEpoch  # noqa: E402

pytestmark = pytest.mark.slow


def test_the_weights_of_the_best_validation_epoch_are_kept() -> None:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    keep_best = KeepBestValidationEpoch()
    keep_best.set_model(model)
    weights_by_epoch = []
    for epoch, accuracy in enumerate([0.50, 0.90, 0.70, 0.90]):
        model.set_weights([np.full_like(w, epoch) for w in model.get_weights()])
        weights_by_epoch.append(model.get_weights())
        keep_best.on_epoch_end(epoch, {"val_accuracy": accuracy, "val_loss": 1.0})
    keep_best.on_train_end()
    assert keep_best.best_epoch == 2
    for kept, expected in zip(model.get_weights(), weights_by_epoch[1], strict=True):
        np.testing.assert_array_equal(kept, expected)
