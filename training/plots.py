"""The notebook's two figures per model: loss by epoch, and violin plots of the trained weights.

Figures are built with ``matplotlib.figure.Figure`` (Agg canvas, no pyplot state), so no display or
global backend switch is needed.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import seaborn
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from training.fit import Candidate, Trained

DPI = 80
LOSS_FIGURE_SIZE = (6.0, 4.0)
WEIGHTS_FIGURE_SIZE = (9.0, 4.0)
VIOLIN_COLOURS = ("tab:blue", "tab:orange", "tab:green")


def loss_plot_name(model_name: str) -> str:
    """File name of a model's loss-curve figure."""
    return f"{model_name}_loss.png"


def weights_plot_name(model_name: str) -> str:
    """File name of a model's weight-violin figure."""
    return f"{model_name}_weights.png"


def write_plots(trained: Trained, plots_dir: Path) -> list[Path]:
    """Write both figures of one model into ``plots_dir``; returns their paths."""
    plots_dir.mkdir(parents=True, exist_ok=True)
    name = trained.label
    paths = [plots_dir / loss_plot_name(name), plots_dir / weights_plot_name(name)]
    _loss_figure(trained).savefig(paths[0], dpi=DPI)
    _weights_figure(trained).savefig(paths[1], dpi=DPI)
    return paths


def _loss_figure(trained: Trained) -> Figure:
    """Training and validation cross-entropy by epoch, as the notebook's ``plt_dynamic``."""
    figure = Figure(figsize=LOSS_FIGURE_SIZE, layout="constrained")
    axes = figure.add_subplot()
    epochs = np.arange(1, len(trained.history["loss"]) + 1)
    axes.plot(
        epochs,
        trained.history["loss"],
        "r",
        marker="o",
        label="train loss (dropout active, epoch mean)",
    )
    axes.plot(epochs, trained.history["val_loss"], "b", marker="o", label="validation loss")
    axes.set(
        xlabel="epoch",
        ylabel="categorical cross-entropy",
        title=f"{trained.label}: loss by epoch",
    )
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(alpha=0.3)
    axes.legend()
    return figure


def _weights_figure(trained: Trained) -> Figure:
    """Violins of the kernel weights of hidden layers 1 and 2 and of the output layer."""
    dense = [layer for layer in trained.model.layers if isinstance(layer, keras.layers.Dense)]
    shown = {"hidden layer 1": dense[0], "hidden layer 2": dense[1], "output layer": dense[-1]}
    figure = Figure(figsize=WEIGHTS_FIGURE_SIZE, layout="constrained")
    figure.suptitle(f"{trained.label}: trained weights")
    for index, (title, layer) in enumerate(shown.items()):
        axes = figure.add_subplot(1, len(shown), index + 1)
        weights = np.asarray(layer.kernel).ravel()
        seaborn.violinplot(y=weights, ax=axes, color=VIOLIN_COLOURS[index])
        axes.set(title=f"{title} ({layer.name})", ylabel="weight")
    return figure


CONFUSION_PLOT = "confusion_matrix.png"
MISTAKES_PLOT = "misclassified.png"
MISTAKES_SHOWN = 60
MISTAKES_PER_ROW = 12


def write_test_figures(
    winner: Candidate, test_images: np.ndarray, test_labels: np.ndarray, plots_dir: Path
) -> list[Path]:
    """The exported model's confusion matrix and a grid of the test images it gets wrong."""
    plots_dir.mkdir(parents=True, exist_ok=True)
    predicted = winner.test_probabilities.argmax(axis=1)
    paths = [plots_dir / CONFUSION_PLOT, plots_dir / MISTAKES_PLOT]
    _confusion_figure(winner.name, test_labels, predicted).savefig(paths[0], dpi=DPI)
    _mistakes_figure(winner.name, test_images, test_labels, predicted).savefig(paths[1], dpi=DPI)
    return paths


def _confusion_figure(name: str, labels: np.ndarray, predicted: np.ndarray) -> Figure:
    """Counts of true digit (rows) against predicted digit (columns), the diagonal dimmed."""
    matrix = np.zeros((10, 10), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    off_diagonal = matrix * (1 - np.eye(10, dtype=np.int64))
    figure = Figure(figsize=(6.5, 5.5), layout="constrained")
    axes = figure.add_subplot()
    seaborn.heatmap(off_diagonal, annot=matrix, fmt="d", cmap="Reds", cbar=False, ax=axes,
                    annot_kws={"fontsize": 8})  # fmt: skip
    axes.set(
        xlabel="predicted digit",
        ylabel="true digit",
        title=f"{name}: test confusion matrix\n{int(np.sum(off_diagonal))} errors of "
        f"{len(labels):,} (colour: errors only)",
    )
    return figure


def _mistakes_figure(
    name: str, images: np.ndarray, labels: np.ndarray, predicted: np.ndarray
) -> Figure:
    """The first misclassified test images, each titled true -> predicted."""
    wrong = np.flatnonzero(predicted != labels)[:MISTAKES_SHOWN]
    rows = max(1, -(-len(wrong) // MISTAKES_PER_ROW))
    figure = Figure(figsize=(MISTAKES_PER_ROW * 0.9, rows * 1.05 + 0.4), layout="constrained")
    figure.suptitle(
        f"{name}: the first {len(wrong)} misclassified test images (true -> predicted), "
        f"of {int(np.sum(predicted != labels))}"
    )
    for position, index in enumerate(wrong):
        axes = figure.add_subplot(rows, MISTAKES_PER_ROW, position + 1)
        axes.imshow(images[index], cmap="gray", vmin=0, vmax=255)
        axes.set_title(f"{labels[index]} -> {predicted[index]}", fontsize=8)
        axes.axis("off")
    return figure
