"""One run end to end: train (or reload) the candidates, pick the best on validation, export, write.

Nothing is written into the output directory until the ONNX model has passed its parity check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from training import fit
from training.architectures import Architecture, get_architecture
from training.card import RunFacts, machine_card, plot_links, write_atomically
from training.data import Mnist
from training.export import export_and_check
from training.fit import Candidate, Settings, Trained
from training.plots import write_plots
from training.readme import render_readme
from training.report import comparison_table, observations
from training.splits import Splits, prepare_splits

ONNX_FILE = "mnist_mlp.onnx"
CARD_FILE = "mnist_mlp.json"
README_FILE = "README.md"
PLOTS_DIR = "plots"


@dataclass(frozen=True)
class Request:
    """What the command line asked for."""

    model_names: tuple[str, ...]
    settings: Settings
    output_dir: Path
    work_dir: Path
    export_only: bool = False


@dataclass(frozen=True)
class Summary:
    """What a finished run reports on the terminal."""

    table: str
    observations: list[str]
    card: dict
    written: list[Path]


def run(request: Request, mnist: Mnist) -> Summary:
    """Train or reload every requested model, export the best on validation, write the cards."""
    fit.enable_determinism()
    architectures = [get_architecture(name) for name in request.model_names]
    if request.export_only:
        trained_models, settings = _load_all(architectures, request.work_dir)
        splits = prepare_splits(mnist, settings.limit)
    else:
        settings = request.settings
        splits = prepare_splits(mnist, settings.limit)
        trained_models = [
            _train_and_save(architecture, splits, settings, request.work_dir)
            for architecture in architectures
        ]
    candidates = [fit.evaluate(trained, splits) for trained in trained_models]
    winner = select_winner(candidates)
    exported = export_and_check(winner.trained.model, splits.test_images, winner.test_probabilities)
    facts = RunFacts(settings, splits.describe(), mnist.source, exported)
    return _write_outputs(candidates, winner, facts, request.output_dir)


def select_winner(candidates: list[Candidate]) -> Candidate:
    """Best validation accuracy; ties go to the lower validation loss, then to the earlier model."""
    if not candidates:
        raise ValueError("no candidates to choose from")
    return max(candidates, key=lambda c: (c.validation.accuracy, -c.validation.loss))


def _train_and_save(
    architecture: Architecture, splits: Splits, settings: Settings, work_dir: Path
) -> Trained:
    """Train one model and keep it in the work dir, so a later export can run alone."""
    print(
        f"== {architecture.name}: {settings.epochs} epochs on {len(splits.train.inputs):,} images"
    )
    trained = fit.train(architecture, splits, settings)
    fit.save(trained, settings, work_dir)
    return trained


def _load_all(architectures: list[Architecture], work_dir: Path) -> tuple[list[Trained], Settings]:
    """Reload saved models; they must all come from runs with the same settings."""
    loaded = [fit.load(architecture, work_dir) for architecture in architectures]
    settings = {saved_settings for _, saved_settings in loaded}
    if len(settings) != 1:
        raise ValueError(f"{work_dir}: the saved models come from runs with different settings")
    return [trained for trained, _ in loaded], settings.pop()


def _write_outputs(
    candidates: list[Candidate], winner: Candidate, facts: RunFacts, output_dir: Path
) -> Summary:
    """Plots, ONNX model, JSON card and README, in that order."""
    written = [
        path
        for candidate in candidates
        for path in write_plots(candidate.trained, output_dir / PLOTS_DIR)
    ]
    card = machine_card(candidates, winner, facts)
    table = comparison_table(candidates)
    notes = observations(candidates, winner)
    readme = render_readme(card, table, notes, plot_links(candidates))
    for name, content in (
        (ONNX_FILE, facts.exported.onnx_bytes),
        (CARD_FILE, (json.dumps(card, indent=2) + "\n").encode()),
        (README_FILE, readme.encode()),
    ):
        write_atomically(output_dir / name, content)
        written.append(output_dir / name)
    return Summary(table, notes, card, written)
