"""The comparison table and the observations, both computed from the candidates of this run."""

from __future__ import annotations

import itertools
import math

import numpy as np

from training.architectures import BATCH_NORMALIZATION, Architecture
from training.assessment import Robustness
from training.fit import Candidate

TABLE_HEADER = (
    "model",
    "dense layers (units)",
    "dropout",
    "weight initialisation",
    "parameters",
    "train acc",
    "val acc",
    "test acc",
    "test loss",
    "train s",
    "notebook train",
    "notebook test",
)
UNIFORM_GUESS_LOSS = math.log(10)


def candidate_row(candidate: Candidate) -> dict[str, object]:
    """Everything the table shows about one candidate, as plain data for the JSON card."""
    architecture = candidate.trained.architecture
    model = candidate.trained.model
    return {
        "name": candidate.name,
        "dense_units": [layer.units for layer in architecture.dense_layers],
        "dropout_rates": [layer.rate for layer in architecture.dropout_layers],
        "batch_normalization": any(
            layer.kind == BATCH_NORMALIZATION for layer in architecture.layers
        ),
        "kernel_initializers": [
            layer.initializer.describe() for layer in architecture.dense_layers
        ],
        "parameters": int(model.count_params()),
        "trainable_parameters": int(sum(int(np.prod(w.shape)) for w in model.trainable_weights)),
        "train_accuracy": candidate.train.accuracy,
        "validation_accuracy": candidate.validation.accuracy,
        "test_accuracy": candidate.test.accuracy,
        "test_loss": candidate.test.loss,
        "initial_validation_loss": candidate.trained.initial_validation.loss,
        "train_seconds": round(candidate.trained.train_seconds, 1),
        "kept_epoch": candidate.trained.kept_epoch,
        "notebook": {
            "train_accuracy": architecture.notebook.train_accuracy,
            "test_accuracy": architecture.notebook.test_accuracy,
        },
    }


def comparison_table(candidates: list[Candidate]) -> str:
    """A Markdown table of all candidates beside the notebook's published accuracies."""
    lines = [_markdown_line(TABLE_HEADER), _markdown_line(("---",) * len(TABLE_HEADER))]
    for candidate in candidates:
        row = candidate_row(candidate)
        parameters = f"{row['parameters']:,}"
        if row["trainable_parameters"] != row["parameters"]:
            parameters += f" ({row['trainable_parameters']:,} trainable)"
        lines.append(
            _markdown_line(
                (
                    row["name"],
                    "-".join(str(units) for units in row["dense_units"])
                    + (" + BatchNorm" if row["batch_normalization"] else ""),
                    _describe_runs([f"{rate:g}" for rate in row["dropout_rates"]]) or "none",
                    _initialisation(candidate.trained.architecture),
                    parameters,
                    _percent(row["train_accuracy"]),
                    _percent(row["validation_accuracy"]),
                    _percent(row["test_accuracy"]),
                    f"{row['test_loss']:.4f}",
                    f"{row['train_seconds']:.1f}",
                    _percent(row["notebook"]["train_accuracy"]),
                    _percent(row["notebook"]["test_accuracy"]),
                )
            )
        )
    return "\n".join(lines)


TERMINAL_HEADER = ("model", "params", "train", "val", "robust val", "test", "suite mean", "s")


def terminal_table(candidates: list[Candidate], robustness: Robustness | None) -> str:
    """The run's summary for the terminal, under 100 columns (the card has the full tables)."""
    rows = [TERMINAL_HEADER]
    for candidate in candidates:
        validation = robustness.validation[candidate.name] if robustness else None
        suite = robustness.test[candidate.name] if robustness else None
        rows.append(
            (
                candidate.name,
                f"{int(candidate.trained.model.count_params()):,}",
                _percent(candidate.train.accuracy),
                _percent(candidate.validation.accuracy),
                _percent(validation["robust_accuracy"]) if validation else "-",
                _percent(candidate.test.accuracy),
                _percent(suite["mean_without_clean"]) if suite else "-",
                f"{candidate.trained.train_seconds:.0f}",
            )
        )
    widths = [max(len(row[index]) for row in rows) for index in range(len(TERMINAL_HEADER))]
    return "\n".join(
        "  ".join(cell.ljust(width) if index == 0 else cell.rjust(width)
                  for index, (cell, width) in enumerate(zip(row, widths, strict=True)))
        for row in rows
    )  # fmt: skip


def observations(candidates: list[Candidate], winner: Candidate) -> list[str]:
    """Sentences whose every number and choice of words comes from this run's results."""
    return [
        _winner_observation(candidates, winner),
        _gap_observation(candidates),
        _initialisation_observation(candidates),
        _best_epoch_observation(candidates),
        _notebook_observation(candidates),
    ]


def _winner_observation(candidates: list[Candidate], exported: Candidate) -> str:
    """Who won on validation, by how much, and what that means on the test set.

    In a robust run the exported model is not one of these three: the best of them is named.
    """
    winner = exported
    role = "is the model exported"
    if exported not in candidates:
        winner = max(candidates, key=lambda c: (c.validation.accuracy, -c.validation.loss))
        role = f"is the best of the notebook recipe (the model exported is {exported.name})"
    others = sorted(
        (c for c in candidates if c is not winner), key=lambda c: -c.validation.accuracy
    )
    text = (
        f"{winner.name} has the best validation accuracy, {_percent(winner.validation.accuracy)}, "
        f"and {role}; its test accuracy is {_percent(winner.test.accuracy)}"
    )
    if not others:
        return f"{text} (it was the only model trained)."
    runner_up = others[0]
    test_margin = winner.test.accuracy - runner_up.test.accuracy
    on_test = (
        f"and {_points(test_margin)} points behind on test"
        if test_margin >= 0
        else f"but {_points(-test_margin)} points ahead on test (not used to choose)"
    )
    return (
        f"{text}. The runner-up, {runner_up.name}, is "
        f"{_points(winner.validation.accuracy - runner_up.validation.accuracy)} points behind on "
        f"validation {on_test}."
    )


def _gap_observation(candidates: list[Candidate]) -> str:
    """Train minus validation accuracy per model, naming the one that fits its training set most."""
    gaps = {c.name: c.train.accuracy - c.validation.accuracy for c in candidates}
    listed = ", ".join(f"{name} {_signed_points(gap)}" for name, gap in gaps.items())
    widest = max(gaps, key=gaps.get)
    return (
        f"Train minus validation accuracy (both measured after training, dropout off): {listed} "
        f"points; {widest} fits its training images most closely."
    )


def _initialisation_observation(candidates: list[Candidate]) -> str:
    """Validation loss before training, grouped by hidden-layer initialisers, and after epoch 1."""
    groups: dict[str, list[str]] = {}
    for candidate in candidates:
        hidden = [
            layer.initializer.describe() for layer in candidate.trained.architecture.dense_layers
        ]
        groups.setdefault(" then ".join(dict.fromkeys(hidden[:-1])), []).append(
            f"{candidate.name} {candidate.trained.initial_validation.loss:.2f}"
        )
    before = "; ".join(f"{label}: {', '.join(names)}" for label, names in groups.items())
    after = ", ".join(
        f"{c.name} {_percent(c.trained.history['val_accuracy'][0])}" for c in candidates
    )
    return (
        f"Effect of initialisation: validation loss before any training (a uniform guess scores "
        f"ln 10 = {UNIFORM_GUESS_LOSS:.2f}) with hidden layers initialised {before}. "
        f"Validation accuracy after epoch 1: {after}."
    )


def _best_epoch_observation(candidates: list[Candidate]) -> str:
    """Where each validation curve peaks, which epoch's weights were kept, and the last epoch."""
    parts = []
    for candidate in candidates:
        history = candidate.trained.history
        losses, accuracies = history["val_loss"], history["val_accuracy"]
        lowest = int(np.argmin(losses))
        kept = candidate.trained.kept_epoch
        parts.append(
            f"{candidate.name} lowest loss {losses[lowest]:.4f} at epoch {lowest + 1} of "
            f"{len(losses)} (final {losses[-1]:.4f}); weights kept from epoch {kept}, "
            f"validation accuracy {_percent(accuracies[kept - 1])} "
            f"(final {_percent(accuracies[-1])})"
        )
    return f"Validation curves: {'; '.join(parts)}."


def _notebook_observation(candidates: list[Candidate]) -> str:
    """This run's test accuracy against the notebook's published one."""
    parts = []
    for candidate in candidates:
        published = candidate.trained.architecture.notebook.test_accuracy
        parts.append(
            f"{candidate.name} {_percent(candidate.test.accuracy)} vs {_percent(published)} "
            f"({_signed_points(candidate.test.accuracy - published)} points)"
        )
    return (
        f"Test accuracy against the notebook's: {'; '.join(parts)}. The notebook trained on all "
        "60,000 training images and validated on the test set; this run holds out a validation set."
    )


def _initialisation(architecture: Architecture) -> str:
    """Kernel initialisers of the hidden layers in order, then the output layer's."""
    hidden = [layer.initializer.describe() for layer in architecture.dense_layers[:-1]]
    output = architecture.dense_layers[-1].initializer.describe()
    return f"{_describe_runs(hidden)}; output {output}"


def _describe_runs(items: list[str]) -> str:
    """Consecutive repeats folded: ['a', 'b', 'b'] -> 'a, b x2'."""
    runs = [(item, len(list(group))) for item, group in itertools.groupby(items)]
    return ", ".join(item if count == 1 else f"{item} x{count}" for item, count in runs)


def _markdown_line(cells: tuple[str, ...]) -> str:
    """One Markdown table row."""
    return "| " + " | ".join(cells) + " |"


def _percent(fraction: float) -> str:
    """0.98153 -> '98.15%'."""
    return f"{100 * fraction:.2f}%"


def _points(fraction: float) -> str:
    """A difference of accuracies in percentage points, e.g. 0.0123 -> '1.23'."""
    return f"{100 * fraction:.2f}"


def _signed_points(fraction: float) -> str:
    """Like ``_points`` with an explicit sign."""
    return f"{100 * fraction:+.2f}"
