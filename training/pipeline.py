"""One run end to end: train (or reload) the candidates, pick the best on validation, export, write.

Nothing is written into the output directory until the ONNX model has passed its parity check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from training import fit, robust
from training.architectures import Architecture, get_architecture, with_reading
from training.assessment import Robustness, assess
from training.calibrate import finish, write
from training.card import RunFacts, machine_card, plot_links, write_atomically
from training.data import Mnist
from training.export import export_and_check
from training.fit import NOTEBOOK_RECIPE, ROBUST_RECIPE, Candidate, Settings, Trained
from training.plots import write_plots, write_test_figures
from training.progress import PlannedModel, RunProgress
from training.readme import render_readme
from training.report import comparison_table, observations, terminal_table
from training.robustness import transformed_inputs
from training.splits import Splits, prepare_splits
from training.text import count

MODEL_STEM = "mnist_mlp"
README_FILE = "README.md"
PLOTS_DIR = "plots"
STUDY_FILE = "notebook_study.json"


@dataclass(frozen=True)
class Request:
    """What the command line asked for."""

    model_names: tuple[str, ...]
    settings: Settings
    output_dir: Path
    work_dir: Path
    export_only: bool = False
    version: int = 1


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
    if request.export_only:
        trained_models, settings = _load_all(request)
    else:
        settings = request.settings
    splits = prepare_splits(mnist, settings.limit)
    is_robust = settings.recipe == ROBUST_RECIPE
    robust_set = robust.robust_validation(splits) if is_robust else None
    if not request.export_only:
        trained_models = _train_all(request, splits, robust_set)
    candidates = [fit.evaluate(trained, splits) for trained in trained_models]
    suite = transformed_inputs(splits.test_images[: settings.limit]) if is_robust else None
    robustness = assess(candidates, splits, robust_set, suite) if is_robust else None
    winner = select_winner(candidates, robustness)
    exported = export_and_check(winner.trained.model, splits.test_images, winner.test_probabilities)
    facts = RunFacts(
        settings,
        splits.describe(),
        mnist.source,
        exported,
        robustness,
        test_images=splits.test_images,
        test_labels=splits.test.labels,
        version=request.version,
    )
    return _write_outputs(candidates, winner, facts, request.output_dir, (splits, suite))


def select_winner(candidates: list[Candidate], robustness: Robustness | None = None) -> Candidate:
    """Best validation accuracy (robust run: best selection score); ties: lower validation loss.

    Remaining ties go to the earlier model.
    """
    if not candidates:
        raise ValueError("no candidates to choose from")
    if robustness is not None:
        return max(candidates, key=lambda c: (robustness.selection(c.name), -c.validation.loss))
    return max(candidates, key=lambda c: (c.validation.accuracy, -c.validation.loss))


def _train_all(request: Request, splits: Splits, robust_set: tuple | None) -> list[Trained]:
    """The notebook's models with its settings, then (robust run) the robust recipe's, with one
    progress line per epoch over the whole run."""
    settings = request.settings
    notebook = _architectures(request.model_names, settings)
    robust_recipe = _architectures(settings.robust_models, settings)
    progress = RunProgress(
        [PlannedModel(architecture.name, settings.epochs) for architecture in notebook]
        + [PlannedModel(_robust_label(a), settings.robust_epochs) for a in robust_recipe]
    )
    trained = [
        _train_and_save(architecture, splits, settings, request.work_dir, progress)
        for architecture in notebook
    ]
    for architecture in robust_recipe:
        _announce(architecture, settings.robust_epochs, splits, "robust recipe, ")
        model = robust.train_robust(
            architecture,
            splits,
            settings,
            robust_set=robust_set,
            callbacks=[progress.callback(_robust_label(architecture))],
        )
        fit.save(model, settings, request.work_dir)
        trained.append(model)
    return trained


def _robust_label(architecture: Architecture) -> str:
    return f"{architecture.name}-{ROBUST_RECIPE}"


def _architectures(names: tuple[str, ...], settings: Settings) -> list[Architecture]:
    """The named architectures under the run's reading of the initialiser lines."""
    return [with_reading(get_architecture(name), settings.init_reading) for name in names]


def _announce(architecture: Architecture, epochs: int, splits: Splits, recipe: str = "") -> None:
    """One line before each model's progress bar."""
    print(
        f"== {architecture.name} ({recipe}{count(epochs, 'epoch')} on "
        f"{len(splits.train.inputs):,} images)"
    )


def _train_and_save(
    architecture: Architecture,
    splits: Splits,
    settings: Settings,
    work_dir: Path,
    progress: RunProgress,
) -> Trained:
    """Train one model and keep it in the work dir, so a later export can run alone."""
    _announce(architecture, settings.epochs, splits)
    trained = fit.train(
        architecture, splits, settings, callbacks=[progress.callback(architecture.name)]
    )
    fit.save(trained, settings, work_dir)
    return trained


def _load_all(request: Request) -> tuple[list[Trained], Settings]:
    """Reload saved models; they must all come from runs with the same settings."""
    loaded = [
        fit.load(architecture, request.work_dir)
        for architecture in map(get_architecture, request.model_names)
    ]
    if loaded and loaded[0][1].recipe == ROBUST_RECIPE:
        loaded += [
            fit.load(get_architecture(name), request.work_dir, ROBUST_RECIPE)
            for name in loaded[0][1].robust_models
        ]
    settings = {saved_settings for _, saved_settings in loaded}
    if len(settings) != 1:
        raise ValueError(
            f"{request.work_dir}: the saved models come from runs with different settings"
        )
    return [trained for trained, _ in loaded], settings.pop()


def _write_outputs(
    candidates: list[Candidate], winner: Candidate, facts: RunFacts, output_dir: Path,
    evidence: tuple[Splits, dict | None],
) -> Summary:  # fmt: skip
    """Plots; the trust stage (temperature, digit_score); ONNX models, JSON cards, README.

    ``evidence`` is the run's splits and, for a robust run, the test suite's model inputs.
    """
    written = [
        path
        for candidate in candidates
        for path in write_plots(candidate.trained, output_dir / PLOTS_DIR)
    ]
    written += write_test_figures(
        winner, facts.test_images, facts.test_labels, output_dir / PLOTS_DIR
    )
    splits, suite = evidence
    card, trust = finish(
        machine_card(candidates, winner, facts), facts.exported.onnx_bytes, splits, facts.created,
        suite,
    )  # fmt: skip
    reproduced = [c for c in candidates if c.trained.recipe == NOTEBOOK_RECIPE]
    table = comparison_table(reproduced)
    notes = observations(reproduced, winner)
    readme = render_readme(card, table, notes, plot_links(candidates), _study(output_dir))
    written += write(card, trust, output_dir, splits, MODEL_STEM)
    write_atomically(output_dir / README_FILE, readme.encode())
    written.append(output_dir / README_FILE)
    return Summary(terminal_table(candidates, facts.robustness), notes, card, written)


def _study(output_dir: Path) -> dict | None:
    """The notebook study's results, when ``python -m training.study`` has written them."""
    path = output_dir / STUDY_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
