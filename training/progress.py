"""One progress line per epoch over the whole run: every model's epochs, elapsed time and an ETA.

Keras' own bar shows one epoch of one model; a run trains several models (the robust recipe one
more, for 160 epochs), so the line says where the run stands and when it should end. The ETA
counts the training epochs only (evaluation and export follow, in seconds to a minute).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    import keras


@dataclass(frozen=True)
class PlannedModel:
    """One model of the run and its number of epochs."""

    label: str
    epochs: int

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"{self.label}: a model trains at least one epoch, not {self.epochs}")


@dataclass
class RunProgress:
    """Counts the epochs done per model and estimates the time the rest will take.

    The rest of the current model goes at its own pace so far; a model not started yet at the
    mean pace of the models so far (model sizes and recipes differ, so the estimate corrects
    itself once that model has run an epoch). A model's first epoch also builds its graph, so
    from its second epoch on the first no longer counts towards its pace.
    """

    plan: Sequence[PlannedModel]
    clock: Callable[[], float] = time.monotonic
    started: float = field(init=False)
    seconds: dict[str, list[float]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if not self.plan:
            raise ValueError("a run trains at least one model")
        labels = [model.label for model in self.plan]
        if len(set(labels)) != len(labels):
            raise ValueError(f"each model of a run is trained once: {', '.join(labels)}")
        self.started = self.clock()

    @property
    def total_epochs(self) -> int:
        return sum(model.epochs for model in self.plan)

    @property
    def done_epochs(self) -> int:
        return sum(len(durations) for durations in self.seconds.values())

    def epoch_done(self, label: str, seconds: float) -> None:
        """Record one finished epoch of ``label`` and how long it took."""
        planned = self._planned(label)
        durations = self.seconds.setdefault(label, [])
        if len(durations) >= planned.epochs:
            raise ValueError(f"{label} has already run its {planned.epochs} epochs")
        durations.append(seconds)

    def remaining_seconds(self) -> float:
        """Estimated seconds until the last epoch of the last model ends."""
        paces = {label: _pace(durations) for label, durations in self.seconds.items()}
        if not paces:
            return 0.0
        overall_pace = sum(paces.values()) / len(paces)
        return sum(
            (model.epochs - len(self.seconds.get(model.label, [])))
            * paces.get(model.label, overall_pace)
            for model in self.plan
        )

    def line(self, label: str) -> str:
        """``run 7/60 epochs (12%), model_2 epoch 1/20, elapsed 0:42, ETA 5:01 (05:57 UTC)``."""
        planned = self._planned(label)
        done, total = self.done_epochs, self.total_epochs
        elapsed = self.clock() - self.started
        remaining = self.remaining_seconds()
        finish = datetime.now(UTC) + timedelta(seconds=remaining)
        return (
            f"run {done}/{total} epochs ({100 * done // total}%), {label} epoch "
            f"{len(self.seconds.get(label, []))}/{planned.epochs}, elapsed "
            f"{clock_text(elapsed)}, ETA {clock_text(remaining)} ({finish:%H:%M} UTC)"
        )

    def callback(self, label: str, stream: TextIO | None = None) -> keras.callbacks.Callback:
        """A Keras callback that reports each epoch of ``label`` on ``stream`` (stdout)."""
        return _keras_callback(self, label, stream or sys.stdout)

    def _planned(self, label: str) -> PlannedModel:
        for model in self.plan:
            if model.label == label:
                return model
        raise ValueError(f"{label} is not a model of this run")


def _pace(durations: list[float]) -> float:
    """Seconds per epoch: the mean after the first epoch, which also traces the graph."""
    steady = durations[1:] or durations
    return sum(steady) / len(steady)


def clock_text(seconds: float) -> str:
    """``H:MM:SS`` (``M:SS`` under an hour), rounded to the second."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, seconds_left = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{seconds_left:02d}"
    return f"{minutes}:{seconds_left:02d}"


def _keras_callback(progress: RunProgress, label: str, stream: TextIO) -> keras.callbacks.Callback:
    """Keras runs its own progress bar last, so the epoch's line is printed when the next
    epoch begins (or training ends): after Keras' summary of the epoch, not inside it."""
    import keras

    class EpochProgress(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.epoch_started = 0.0
            self.pending = False

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._report()
            self.epoch_started = progress.clock()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            progress.epoch_done(label, progress.clock() - self.epoch_started)
            self.pending = True

        def on_train_end(self, logs: dict | None = None) -> None:
            self._report()

        def _report(self) -> None:
            if self.pending:
                print(progress.line(label), file=stream, flush=True)
                self.pending = False

    return EpochProgress()
