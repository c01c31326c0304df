"""The run's progress line: epochs over every model, elapsed time, an ETA that follows the pace."""

from __future__ import annotations

import re

import pytest

from training.progress import PlannedModel, RunProgress, clock_text


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def progress_of(*plan: tuple[str, int]) -> tuple[RunProgress, FakeClock]:
    clock = FakeClock()
    return RunProgress([PlannedModel(label, epochs) for label, epochs in plan], clock), clock


def test_the_eta_counts_every_epoch_of_every_model() -> None:
    progress, clock = progress_of(("model_1", 3), ("model_2", 2))
    for seconds in (12.0, 2.0):
        clock.now += seconds
        progress.epoch_done("model_1", seconds)

    # model_1: one more epoch at 2 s (the first, 12 s, built the graph); model_2: two at 2 s.
    assert progress.remaining_seconds() == pytest.approx(6.0)
    line = progress.line("model_1")
    assert re.fullmatch(
        r"run 2/5 epochs \(40%\), model_1 epoch 2/3, elapsed 0:14, ETA 0:06 \(\d\d:\d\d UTC\)",
        line,
    ), line


def test_a_started_model_goes_at_its_own_pace() -> None:
    progress, _ = progress_of(("model_1", 2), ("model_3-robust", 4))
    progress.epoch_done("model_1", 1.0)
    progress.epoch_done("model_1", 1.0)
    progress.epoch_done("model_3-robust", 10.0)
    progress.epoch_done("model_3-robust", 10.0)

    assert progress.remaining_seconds() == pytest.approx(20.0)
    assert progress.line("model_3-robust").startswith(
        "run 4/6 epochs (66%), model_3-robust epoch 2/4, elapsed 0:00, ETA 0:20"
    )


def test_the_last_epoch_leaves_nothing_to_wait_for() -> None:
    progress, _ = progress_of(("model_1", 1))
    progress.epoch_done("model_1", 5.0)

    assert progress.remaining_seconds() == 0.0
    assert "run 1/1 epochs (100%)" in progress.line("model_1")


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.4, "0:00"), (59.6, "1:00"), (754, "12:34"), (3 * 3600 + 65, "3:01:05")]
)
def test_clock_text(seconds: float, text: str) -> None:
    assert clock_text(seconds) == text


def test_bad_plans_and_epochs_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one model"):
        RunProgress([])
    with pytest.raises(ValueError, match="trained once"):
        progress_of(("model_1", 2), ("model_1", 2))
    with pytest.raises(ValueError, match="at least one epoch"):
        PlannedModel("model_1", 0)
    progress, _ = progress_of(("model_1", 1))
    with pytest.raises(ValueError, match="model_9 is not a model of this run"):
        progress.epoch_done("model_9", 1.0)
    progress.epoch_done("model_1", 1.0)
    with pytest.raises(ValueError, match="already run its 1 epochs"):
        progress.epoch_done("model_1", 1.0)
