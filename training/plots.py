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

from training.fit import Trained

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
    name = trained.architecture.name
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
        title=f"{trained.architecture.name}: loss by epoch",
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
    figure.suptitle(f"{trained.architecture.name}: trained weights")
    for index, (title, layer) in enumerate(shown.items()):
        axes = figure.add_subplot(1, len(shown), index + 1)
        weights = np.asarray(layer.kernel).ravel()
        seaborn.violinplot(y=weights, ax=axes, color=VIOLIN_COLOURS[index])
        axes.set(title=f"{title} ({layer.name})", ylabel="weight")
    return figure
