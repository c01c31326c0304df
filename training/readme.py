"""Render ``models/README.md``, the human model card, from the JSON card and the run's report."""

from __future__ import annotations

from training.card_sections import (
    errors_section,
    robust_section,
    robustness_table_section,
    study_section,
)
from training.trust_report import readme_section

NOTEBOOK_TITLE = "MLP in MNIST dataset — Keras implementation"


def render_readme(
    card: dict, table: str, observations: list[str], plot_links: list[str], study: dict | None
) -> str:
    """The whole human card as Markdown; the faithful reproduction comes first."""
    sections = [
        _summary(card),
        "## The notebook's three models, reproduced\n\n"
        + table
        + "\n\n"
        + "\n".join(f"- {line}" for line in observations),
        "## Plots\n\nLoss by epoch (train and validation) and violin plots of the trained weights "
        "of hidden layer 1, hidden layer 2 and the output layer, per model.\n\n"
        + "\n".join(plot_links),
    ]
    if study is not None:
        sections.append(study_section(study))
    if "robustness" in card:
        sections += [robust_section(card), robustness_table_section(card)]
    sections.append(errors_section(card))
    if "digit_score" in card:
        sections.append(readme_section(card))
    sections += [_intended_use(), not_for_section(card), _training(card), rebuild_section(card)]
    return "\n\n".join(sections) + "\n"


def _summary(card: dict) -> str:
    """What the file is, its signature and headline accuracy."""
    model_input = card["inputs"][0]
    metrics = card["metrics"]
    return (
        f"# {card['name']} — model card (version {card['version']})\n\n"
        f"`{card['name']}.onnx` reads one or more 28x28 greyscale images of a handwritten digit "
        f"and returns the probability of each digit 0-9. It is `{card['architecture']}`, "
        f"{_provenance(card)} The machine-readable card is `{card['name']}.json`.\n\n"
        "| | |\n| --- | --- |\n"
        f"| version | `{card['version']}`, created {card['created']} |\n"
        f"| input | `{model_input['name']}`, {model_input['datatype']} {model_input['shape']}: raw "
        "pixels 0-255, scaled by 1/255 inside the graph |\n"
        + _output_rows(card)
        + f"| test accuracy | {100 * metrics['test_accuracy']:.2f}% on the 10,000 MNIST test "
        f"images (test loss {metrics['test_loss']:.4f}) |\n"
        f"| validation accuracy | {100 * metrics['validation_accuracy']:.2f}% |\n"
        + _robustness_row(card)
        + f"| ONNX opset | {card['opset']} |\n"
        f"| sha256 | `{card['sha256']}` |"
    )


def _output_rows(card: dict) -> str:
    """One table row per graph output: the probabilities, and ``digit_score`` when present."""
    meanings = {
        "probabilities": 'softmax over the labels "0"-"9"'
        + (", calibrated (temperature in the graph)" if "calibration" in card else ""),
        "digit_score": "0-1, higher = more digit-like; below the card's threshold: not a digit",
    }
    return "".join(
        f"| output | `{output['name']}`, {output['datatype']} {output['shape']}: "
        f"{meanings.get(output['name'], '')} |\n"
        for output in card["outputs"]
    )


def replace_summary(readme: str, card: dict) -> str:
    """The README with its first section (title, identity table) rendered again from ``card``."""
    return _summary(card) + readme[readme.index("\n\n## ") :]


def _provenance(card: dict) -> str:
    """Which recipe made the model and how it was chosen, in one sentence."""
    if "robustness" in card:
        return (
            f'a multilayer perceptron of the Keras notebook "{NOTEBOOK_TITLE}" with its layers '
            "unchanged, trained with this project's robust recipe and chosen on clean plus "
            "robustness validation (the notebook's own three models are reproduced below)."
        )
    return (
        f'the best of the three multilayer perceptrons of the Keras notebook "{NOTEBOOK_TITLE}", '
        "chosen on validation accuracy."
    )


def _robustness_row(card: dict) -> str:
    """The robustness suite's mean for the exported model, when the run measured it."""
    if "robustness" not in card:
        return ""
    suite = card["robustness"]["test_suite"][card["architecture"]]
    worst = min((value, name) for name, value in suite.items() if name != "mean_without_clean")
    return (
        f"| robustness suite | mean {100 * suite['mean_without_clean']:.2f}% over "
        f"{len(suite) - 2} transformations of the test images; lowest {100 * worst[0]:.2f}% "
        f"({worst[1]}) |\n"
    )


def _intended_use() -> str:
    """What the model is for."""
    return (
        "## Intended use\n\n"
        "- Digits that look like MNIST: one handwritten digit, light (high values) on a dark (0) "
        "background, size-normalised into about 20x20 pixels and centred by centre of mass in a "
        "28x28 frame.\n"
        "- Teaching, demos and as a baseline for serving experiments."
    )


def not_for_section(card: dict) -> str:
    """What the model is not for; the reject option changes what it says about non-digits."""
    if "digit_score" in card:
        non_digits = (
            "- Telling letters, symbols or doodles apart from digits with certainty: "
            "`digit_score` rejects most non-digits (see above), but it was fitted on synthetic "
            "non-digits only, and a letter shaped like a digit (O, S, Z, l) is read as one.\n"
        )
        stakes = "calibration was fitted on MNIST's writers, who are not your users"
    else:
        non_digits = (
            "- Letters, several digits in one image, photographs, or anything that is not a digit: "
            "the model has no reject option and always answers one of the ten digits.\n"
        )
        stakes = "the probabilities are not calibrated and MNIST's writers are not your users"
    return (
        "## Not for\n\n"
        "- Raw photos or scans fed to the ONNX model directly: it expects MNIST's layout (light on "
        "dark, cropped to the ink, 20 px, centred by mass). The service's preprocessing "
        "(`service.inference.preprocessing.image_to_array`) does that for uploads; the "
        "robustness figures are measured through it.\n"
        + non_digits
        + f"- Decisions that matter (cheques, forms, identity): {stakes}."
    )


def _training(card: dict) -> str:
    """How the candidates were trained, selected and exported."""
    training, parity = card["training"], card["parity"]
    split = training["split"]
    libraries = ", ".join(f"{name} {version}" for name, version in card["libraries"].items())
    return (
        "## How it was trained\n\n"
        f"- Data: MNIST from {training['data_source']}; pixels flattened to 784 and divided by "
        f"255, labels one-hot. Training split: {split['train']:,} images; validation: "
        f"{split['validation_from']}, never the test set; test: {split['test']:,} images.\n"
        f"- Each model: {training['optimizer']}, {training['loss']}, batch size "
        f"{training['batch_size']}, epochs {training['epochs']}, seed {training['seed']} (Keras' "
        "seed set before each model is built, TensorFlow op determinism on: the same seed on the "
        "same machine gives the same metrics).\n"
        f"- Selection: {training['selection']}. The test set is evaluated once per model, for the "
        "table below, and never used to choose.\n"
        f'- "Train acc" is the {training["train_accuracy_means"]}.\n'
        f"- Export: `tf2onnx.convert.from_function`, opset {card['opset']}. Checked before "
        f"writing: on all {parity['images']:,} test images ONNX Runtime's probabilities are within "
        f"{parity['max_abs_difference']:.2g} of Keras' (limit {parity['tolerance']:g}) with the "
        "same predicted digit on every image.\n"
        f"- Libraries: {libraries}. Machine: {training['machine']['platform']}, "
        f"{training['machine']['cpus']} CPUs."
    )


def rebuild_section(card: dict) -> str:
    """The commands that rebuild this directory."""
    training = card["training"]
    limit = f" --limit {training['limit']}" if training["limit"] else ""
    models = " ".join(row["name"] for row in card["candidates"] if "-" not in row["name"])
    if training.get("recipe") == "robust":
        robust_models = " ".join(training["robust_models"])
        limit += (
            f" --recipe robust --robust-models {robust_models} "
            f"--robust-epochs {training['robust_epochs']}"
        )
    return (
        "## Rebuild\n\n"
        "```sh\n"
        "pip install -e '.[train]'\n"
        "python -m training                                # with internet: Keras downloads it\n"
        "python -m training --data-dir ../shared/data/mnist  # or set MNIST_DIR instead\n"
        "```\n\n"
        f"This card comes from `python -m training --models {models} --epochs {training['epochs']} "
        f"--batch-size {training['batch_size']} --seed {training['seed']}{limit}`. The trained "
        "Keras models stay in `--work-dir` (default `work/`, not committed); "
        "`python -m training --export-only` exports and reports again from them without training. "
        "The reproduction study: `python -m training.study` (writes `models/notebook_study.json`, "
        "which this card renders). The robustness table of any ONNX model: "
        "`python -m training.robustness MODEL.onnx`. The temperature and the `digit_score` head "
        "(every run fits them after export) on an exported model alone: "
        "`python -m training.calibrate models/mnist_mlp.onnx`."
    )
