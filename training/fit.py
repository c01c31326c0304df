"""Seeded training and evaluation of one architecture, and the work-dir files that let export rerun.

Each model is seeded just before it is built, so ``--models model_3`` alone gives the same model_3
as a run of all three.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from training.architectures import NARROW_FIRST, Architecture
from training.builder import build_model
from training.losses import KERAS3_LOSS
from training.splits import Split, Splits

PREDICTION_BATCH_SIZE = 1000
NOTEBOOK_RECIPE = "notebook"
ROBUST_RECIPE = "robust"
# Each model and each study run is a new tf.function; TensorFlow's retracing notice is noise here.
tf.get_logger().setLevel(logging.ERROR)
KERAS_EPSILON = 1e-7


@dataclass(frozen=True)
class Settings:
    """What a training run was asked for; saved with the models so export can rerun alone."""

    epochs: int
    batch_size: int
    seed: int
    limit: int | None
    recipe: str = NOTEBOOK_RECIPE
    robust_epochs: int = 0
    robust_models: tuple[str, ...] = ()
    loss: str = KERAS3_LOSS
    init_reading: str = NARROW_FIRST


@dataclass(frozen=True)
class Scores:
    """Accuracy and categorical cross-entropy of a model on one split."""

    accuracy: float
    loss: float


@dataclass(frozen=True)
class Trained:
    """A trained model with its per-epoch history and what it looked like before training.

    ``kept_epoch`` (1-based) is the epoch whose weights the model holds: the best on validation.
    """

    architecture: Architecture
    model: keras.Model
    history: dict[str, list[float]]
    initial_validation: Scores
    train_seconds: float
    kept_epoch: int
    recipe: str = NOTEBOOK_RECIPE

    @property
    def label(self) -> str:
        """The candidate's name: ``model_3`` (notebook recipe) or ``model_3-robust``."""
        name = self.architecture.name
        return name if self.recipe == NOTEBOOK_RECIPE else f"{name}-{self.recipe}"


class KeepBestValidationEpoch(keras.callbacks.Callback):
    """Train every epoch, then keep the weights of the one with the best validation accuracy.

    Selection on the validation split, one level finer than choosing among models: a model whose
    validation curve peaks before the last epoch (over-fitting) is not shipped past its peak.
    """

    def __init__(self) -> None:
        super().__init__()
        self.best_accuracy = -1.0
        self.best_epoch = 0
        self.best_weights: list[np.ndarray] | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        accuracy = (logs or {}).get("val_accuracy")
        if accuracy is not None and accuracy > self.best_accuracy:
            self.best_accuracy, self.best_epoch = float(accuracy), epoch + 1
            self.best_weights = self.model.get_weights()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


@dataclass(frozen=True)
class Candidate:
    """A trained model scored once on each split; ``test_probabilities`` serve the parity check."""

    trained: Trained
    train: Scores
    validation: Scores
    test: Scores
    test_probabilities: np.ndarray

    @property
    def name(self) -> str:
        """The candidate's name, e.g. model_3 or model_3-robust."""
        return self.trained.label


def enable_determinism() -> None:
    """Same seed, same machine, same metrics: TensorFlow's deterministic kernels (per process)."""
    tf.config.experimental.enable_op_determinism()


def progress_verbosity() -> int:
    """Keras' progress bar on a terminal; one line per epoch when the output goes to a log."""
    return 1 if sys.stdout.isatty() else 2


def train(
    architecture: Architecture,
    splits: Splits,
    settings: Settings,
    keep_best_epoch: bool = True,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> Trained:
    """Seed, build and fit as the notebook does, validating on the held-out training images.

    With ``keep_best_epoch`` off the model keeps its last epoch, as the notebook's did;
    ``callbacks`` watch the fit (the run's progress line).
    """
    keras.utils.set_random_seed(settings.seed)
    model = build_model(architecture, loss=settings.loss)
    initial_validation, _ = score(model, splits.validation)
    keep_best = KeepBestValidationEpoch()
    started = time.perf_counter()
    history = model.fit(
        splits.train.inputs,
        splits.train.targets,
        batch_size=settings.batch_size,
        epochs=settings.epochs,
        validation_data=(splits.validation.inputs, splits.validation.targets),
        verbose=progress_verbosity(),
        callbacks=[*([keep_best] if keep_best_epoch else []), *callbacks],
    )
    train_seconds = time.perf_counter() - started
    return Trained(
        architecture=architecture,
        model=model,
        history={
            key: [float(value) for value in values] for key, values in history.history.items()
        },
        initial_validation=initial_validation,
        train_seconds=train_seconds,
        kept_epoch=keep_best.best_epoch if keep_best_epoch else settings.epochs,
    )


def evaluate(trained: Trained, splits: Splits) -> Candidate:
    """Score on train (after training, dropout off), validation, and the test set, once."""
    train_scores, _ = score(trained.model, splits.train)
    validation_scores, _ = score(trained.model, splits.validation)
    test_scores, test_probabilities = score(trained.model, splits.test)
    return Candidate(trained, train_scores, validation_scores, test_scores, test_probabilities)


def score(model: keras.Model, split: Split) -> tuple[Scores, np.ndarray]:
    """Exact accuracy (correct / count) and Keras-style cross-entropy, with the probabilities."""
    probabilities = model.predict(split.inputs, batch_size=PREDICTION_BATCH_SIZE, verbose=0)
    accuracy = float(np.mean(probabilities.argmax(axis=1) == split.labels))
    normalised = probabilities / probabilities.sum(axis=1, keepdims=True)
    clipped = np.clip(normalised.astype(np.float64), KERAS_EPSILON, 1.0 - KERAS_EPSILON)
    loss = float(np.mean(-np.sum(split.targets * np.log(clipped), axis=1)))
    return Scores(accuracy=accuracy, loss=loss), probabilities


def save(trained: Trained, settings: Settings, work_dir: Path) -> None:
    """Write ``<name>.keras`` and ``<name>.json`` (history, timing, settings) into the work dir."""
    work_dir.mkdir(parents=True, exist_ok=True)
    name = trained.label
    trained.model.save(work_dir / f"{name}.keras")
    record = {
        "settings": asdict(settings),
        "history": trained.history,
        "initial_validation": asdict(trained.initial_validation),
        "train_seconds": trained.train_seconds,
        "kept_epoch": trained.kept_epoch,
        "recipe": trained.recipe,
    }
    (work_dir / f"{name}.json").write_text(json.dumps(record, indent=2), encoding="utf-8")


def load(
    architecture: Architecture, work_dir: Path, recipe: str = NOTEBOOK_RECIPE
) -> tuple[Trained, Settings]:
    """Read back what ``save`` wrote, naming the missing file if there is none."""
    label = architecture.name if recipe == NOTEBOOK_RECIPE else f"{architecture.name}-{recipe}"
    model_path = work_dir / f"{label}.keras"
    record_path = work_dir / f"{label}.json"
    for path in (model_path, record_path):
        if not path.is_file():
            raise ValueError(f"{path}: file not found; train first (run without --export-only)")
    record = json.loads(record_path.read_text(encoding="utf-8"))
    trained = Trained(
        architecture=architecture,
        model=keras.saving.load_model(model_path),
        history=record["history"],
        initial_validation=Scores(**record["initial_validation"]),
        train_seconds=record["train_seconds"],
        kept_epoch=record["kept_epoch"],
        recipe=recipe,
    )
    saved = record["settings"]
    return trained, Settings(**{**saved, "robust_models": tuple(saved.get("robust_models", ()))})
