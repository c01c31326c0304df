"""What the trust stage writes: the edited model's card fields, int8 twin, plots, README text."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from training.card import sha256_hex
from training.export import signature
from training.graph import is_head_node

RELIABILITY_PLOT = "reliability.png"
SCORE_PLOT = "digit_score.png"
DPI = 80
SECTION_TITLE = '## Calibrated confidence and "not a digit"'


def updated_card(card: dict, trust, parity: dict, created: datetime) -> dict:
    """The fp32 card with the edited graph's identity (its version stays the card's), signature
    and the two new sections."""
    updated = {**card, **signature(trust.onnx_bytes)}
    updated.update(
        created=created.isoformat().replace("+00:00", "Z"),
        sha256=sha256_hex(trust.onnx_bytes),
        calibration={**trust.calibration, "parity": parity},
        digit_score=trust.digit_score,
    )
    return updated


def int8_bytes(fp32_path: Path, work_path: Path) -> bytes:
    """Dynamic int8 quantisation of the dense layers; the score head stays float32."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    head_nodes = [
        node.name for node in onnx.load(str(fp32_path)).graph.node if is_head_node(node.name)
    ]
    quantize_dynamic(fp32_path, work_path, weight_type=QuantType.QInt8, nodes_to_exclude=head_nodes)
    return work_path.read_bytes()


def int8_card(fp32_card: dict, onnx_bytes: bytes, metrics: dict) -> dict:
    """The int8 model's card: the fp32 card's provenance, its own identity (the version after
    the fp32 model's) and figures."""
    card = {
        key: value
        for key, value in fp32_card.items()
        if key not in ("metrics", "parity", "robustness", "calibration", "digit_score")
    }
    card.update(
        version=str(int(fp32_card["version"]) + 1),
        sha256=sha256_hex(onnx_bytes),
        description=f"{fp32_card['description']} int8 dynamic quantisation.",
        quantization={
            "method": "onnxruntime.quantization.quantize_dynamic",
            "weights": "QInt8",
            "not_quantised": "the digit_score head (float32)",
        },
        metrics=metrics,
        digit_score={
            key: fp32_card["digit_score"][key]
            for key in ("output", "threshold", "rule", "approach")
        },
    )
    return card


def reliability_figure(data: dict) -> Figure:
    """Accuracy against confidence per bin, before and after temperature scaling."""
    figure = Figure(figsize=(9.0, 4.4), layout="constrained")
    figure.suptitle("Reliability, 15 equal-width bins (marker area grows with the bin's images)")
    for position, (name, stages) in enumerate(data.items()):
        axes = figure.add_subplot(1, len(data), position + 1)
        axes.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
        for stage, colour in (("before", "tab:red"), ("after", "tab:blue")):
            rows = stages[stage]
            confidence = [row["confidence"] for row in rows]
            accuracy = [row["accuracy"] for row in rows]
            axes.plot(confidence, accuracy, color=colour, alpha=0.35)
            axes.scatter(
                confidence,
                accuracy,
                s=[4 + 2 * row["images"] ** 0.5 for row in rows],
                color=colour,
                label=f"{stage} temperature scaling",
            )
        axes.set(
            xlabel="mean confidence in bin",
            ylabel="accuracy in bin",
            title=f"MNIST {name}",
            xlim=(0, 1.02),
            ylim=(0, 1.02),
        )
        axes.legend(loc="upper left", fontsize=8)
    return figure


def score_figure(samples: dict[str, np.ndarray], threshold: float) -> Figure:
    """Where digits and each kind of non-digit fall on ``digit_score`` (validation sets)."""
    figure = Figure(figsize=(9.0, 5.0), layout="constrained")
    axes = figure.add_subplot()
    names = list(samples)
    axes.boxplot([samples[name] for name in names], orientation="horizontal", showfliers=False)
    axes.set_yticks(range(1, len(names) + 1), names, fontsize=8)
    axes.axvline(threshold, color="tab:red", linestyle="--", label=f"threshold {threshold:g}")
    axes.set(
        xlabel="digit_score (validation images; boxes: quartiles, whiskers 1.5 IQR)",
        title="digit_score of validation digits and the project's synthetic non-digits",
    )
    axes.legend(loc="lower right")
    return figure


def write_plots(trust, plots_dir: Path) -> list[Path]:
    """The reliability diagram and the score figure."""
    plots_dir.mkdir(parents=True, exist_ok=True)
    paths = [plots_dir / RELIABILITY_PLOT, plots_dir / SCORE_PLOT]
    reliability_figure(trust.reliability).savefig(paths[0], dpi=DPI)
    score_figure(trust.score_samples, trust.threshold).savefig(paths[1], dpi=DPI)
    return paths


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def readme_section(card: dict) -> str:
    """The human card's account of calibration and the reject option, from the JSON card."""
    calibration, score = card["calibration"], card["digit_score"]
    lines = [
        SECTION_TITLE,
        "",
        f"**Calibrated probabilities.** The graph divides the logits by T = "
        f"{calibration['temperature']:g} before the softmax (temperature scaling, fitted on "
        "the validation split by NLL; the test set was used once, for the figures below). "
        f"This stage ran {calibration.get('applied', 'in the training run')}. The "
        "predicted digit never changes; `probabilities` (and so the service's `confidence`) now "
        "mean what they say: of the answers given with confidence 0.9, about 90% are right.",
        "",
        "| set | ECE before | ECE after | NLL before | NLL after | Brier before | Brier after |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, figures in calibration["figures"].items():
        before, after = figures["before"], figures["after"]
        lines.append(
            f"| {name} | {_percent(before['ece'])} | {_percent(after['ece'])} | "
            f"{before['nll']:.4f} | {after['nll']:.4f} | {before['brier']:.4f} | "
            f"{after['brier']:.4f} |"
        )
    lines += ["", f"![reliability diagram](plots/{RELIABILITY_PLOT})", "", _selective(calibration)]
    lines += ["", _reject_option(score), "", _comparison(score), "", _acceptance(card)]
    lines += ["", f"![digit_score by kind](plots/{SCORE_PLOT})"]
    return "\n".join(lines)


def _selective(calibration: dict) -> str:
    """Coverage and accuracy when only confident answers are kept (MNIST test)."""
    tables = calibration["selective_prediction"]
    lines = [
        "Selective prediction on the 10,000 MNIST test images: keep only answers with confidence "
        "at least c.",
        "",
        "| confidence >= | coverage before | accuracy before | coverage after | accuracy after |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for before, after in zip(
        tables["test_before"]["levels"], tables["test_after"]["levels"], strict=True
    ):
        lines.append(
            f"| {before['confidence_at_least']:g} | {_percent(before['coverage'])} | "
            f"{_percent(before['accuracy'])} | {_percent(after['coverage'])} | "
            f"{_percent(after['accuracy'])} |"
        )
    target = tables["test_after"]["target_accuracy"]
    lines += [
        "",
        f"Keeping the most confident answers, accuracy stays at least {100 * target:.1f}% up to "
        f"a coverage of {_percent(tables['test_after']['coverage_at_target'])} "
        f"({_percent(tables['test_before']['coverage_at_target'])} before: dividing by T keeps "
        "the order, but in float32 it rounds more top confidences to the same value, and ties are "
        "kept in image order).",
    ]
    return "\n".join(lines)


def _reject_option(score: dict) -> str:
    return (
        f"**The reject option.** A second output, `digit_score` (FP32 [-1], 0-1, higher = more "
        f"digit-like), comes from a {score['approach']}: {score['head']}. "
        f"The service answers `is_digit: false` when the image has no ink at all (decided in "
        f"preprocessing: blank, uniform, or only noise below the ink threshold) or when "
        f"`digit_score` < **{score['threshold']:g}**, the threshold chosen as "
        f"{score['threshold_chosen']}. `digit` is still the most likely digit either way. The "
        f"head was fitted on {score['fitted_on']}. The non-digits are the project's own, "
        "synthesised from MNIST training images, noise and geometry "
        "(`training/negatives.py`); no other data set, font or letter was used anywhere."
    )


def _comparison(score: dict) -> str:
    """The candidates, on the validation non-digits, each at its own acceptance threshold."""
    kinds = list(score["comparison"][0]["rejected_by_kind"])
    lines = [
        "Approaches compared on the project's synthetic non-digit validation set (made from "
        "validation images; each approach at the threshold that accepts "
        f"{100 * score['acceptance_target']:g}% of clean validation digits). Best rejection "
        f"on validation: {score['best_on_validation']}; shipped: "
        f"{score['approach']} (computed inside the graph).",
        "",
        "| approach | AUROC | non-digits rejected | transformed digits accepted | "
        + " | ".join(kinds)
        + " |",
        "| --- | ---: | ---: | ---: |" + " ---: |" * len(kinds),
    ]
    for row in score["comparison"]:
        lines.append(
            f"| {row['approach']} | {row['auroc']:.4f} | {_percent(row['rejected'])} | "
            f"{_percent(row['transformed_digits_accepted'])} | "
            + " | ".join(_percent(row["rejected_by_kind"][kind]) for kind in kinds)
            + " |"
        )
    return "\n".join(lines)


def _acceptance(card: dict) -> str:
    """Real digits accepted at the shipped threshold: validation, test, the suite's columns."""
    score = card["digit_score"]
    suite = score["test"]["suite_digits_accepted"]
    lines = [
        f"At the shipped threshold {score['threshold']:g}: "
        f"{_percent(score['validation']['clean_digits_accepted'])} of clean validation digits and "
        f"{_percent(score['test']['clean_digits_accepted'])} of MNIST test digits are accepted; "
        f"{_percent(score['non_digit_rejection'])} of the synthetic "
        "non-digit validation set is rejected (preprocessing's no-ink rule included).",
    ]
    if suite:
        lines += ["", "| suite column (test) | digits accepted |", "| --- | ---: |"]
        lines += [f"| {name} | {_percent(value)} |" for name, value in suite.items()]
    return "\n".join(lines)


def replace_section(readme: str, title: str, text: str, before: str) -> str:
    """Put ``text`` in place of the section starting with ``title`` (or ahead of ``before``)."""
    pattern = re.compile(rf"^{re.escape(title)}\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    if pattern.search(readme):
        return pattern.sub(lambda _: text.rstrip() + "\n\n", readme, count=1)
    anchor = readme.index(before)
    return readme[:anchor] + text.rstrip() + "\n\n" + readme[anchor:]
