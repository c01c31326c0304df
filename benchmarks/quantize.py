"""int8 dynamic quantisation of the model: speed and MNIST test accuracy against fp32.

Run: ``python -m benchmarks.quantize`` (about 30 s); ``--write`` also saves the int8 model as
models/mnist_mlp.int8.onnx with its card, but only when it passes issue 5's rule: faster (more
images/s at batch 1 and at batch 256, by more than ``--min-gain``) AND at most 0.2 points of test
accuracy lost. ``quantize_dynamic`` stores the MatMul weights as int8 and quantises activations
at run time; both models run with the service's session options.
"""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from onnxruntime.quantization import QuantType, quantize_dynamic

from benchmarks.data import ROOT, mnist_test_set
from benchmarks.report import conditions, print_table, ratio, time_call
from benchmarks.run import parser_for, workspace
from benchmarks.servers import service_session_options
from service.inference.repository_files import highest_version

MAX_ACCURACY_LOSS_POINTS = 0.2
SHIPPED_INT8 = ROOT / "models" / "mnist_mlp.int8.onnx"


def _parse(argv: list[str] | None):
    parser = parser_for(__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32, 256, 4096])
    parser.add_argument("--seconds", type=float, default=2.0, help="time spent on each figure")
    parser.add_argument(
        "--min-gain", type=float, default=0.05, help="speed-up below which int8 is not 'faster'"
    )
    parser.add_argument("--write", action="store_true", help=f"save to {SHIPPED_INT8} if it passes")
    return parser.parse_args(argv)


def head_nodes(model: Path) -> list[str]:
    """The digit_score head's nodes (``training.graph``), kept in float32 like the shipped int8."""
    return [
        node.name for node in onnx.load(str(model)).graph.node if node.name.startswith("digit_head")
    ]


def session(path: Path) -> onnxruntime.InferenceSession:
    """A session with the service's options, so that both models are compared as served."""
    return onnxruntime.InferenceSession(
        str(path), sess_options=service_session_options(), providers=["CPUExecutionProvider"]
    )


def accuracy(model: onnxruntime.InferenceSession, images: np.ndarray, labels: np.ndarray):
    """Percent correct, and the predicted digits (to compare the two models image by image)."""
    digits = np.concatenate(
        [
            model.run(None, {"image": images[start : start + 1000]})[0].argmax(axis=1)
            for start in range(0, len(images), 1000)
        ]
    )
    return 100.0 * float(np.mean(digits == labels)), digits


def speed_rows(models: dict, images: np.ndarray, batch_sizes: list[int], budget: float) -> list:
    """images/s of each model per batch size, and the int8 / fp32 ratio."""
    rows = []
    for batch in batch_sizes:
        feed = {"image": np.ascontiguousarray(np.resize(images, (batch, 28, 28)))}
        fp32, int8 = (
            batch / time_call(lambda model=model, feed=feed: model.run(None, feed), budget).wall
            for model in models.values()
        )
        rows.append([batch, fp32, int8, ratio(int8, fp32)])
    return rows


def write_int8(
    quantized: Path,
    model: Path,
    int8_accuracy: float,
    same_digit: float,
    destination: Path = SHIPPED_INT8,
) -> None:
    """The int8 model at ``destination`` (beside the fp32 one), with a card of its own: version
    (the next of the model's in that folder), sha256, figures."""
    card = json.loads(model.with_suffix(".json").read_text(encoding="utf-8"))
    version = highest_version(destination.parent, card["name"]) + 1
    shutil.copyfile(quantized, destination)
    fp32_metrics = card.pop("metrics")
    card.pop("parity", None)
    card.pop("robustness", None)  # measured on the fp32 model; the int8 figures are its own
    card.pop("calibration", None)
    if "digit_score" in card:  # the rule, not the fp32 model's figures
        card["digit_score"] = {key: card["digit_score"][key] for key in ("output", "threshold")}
    card.update(
        version=str(version),
        sha256=hashlib.sha256(destination.read_bytes()).hexdigest(),
        description=f"{card.get('description', '')} int8 dynamic quantisation.".strip(),
        quantization={"method": "onnxruntime.quantization.quantize_dynamic", "weights": "QInt8"},
        metrics={
            "test_accuracy": int8_accuracy / 100.0,
            "fp32_test_accuracy": fp32_metrics["test_accuracy"],
            "same_digit_as_fp32": same_digit / 100.0,
        },
    )
    destination.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n", "utf-8")
    print(f"wrote {destination} and its card")


def _verdict(rows: list, fp32_accuracy: float, int8_accuracy: float, min_gain: float) -> bool:
    speed_ups = {row[0]: row[2] / row[1] for row in rows}
    faster = all(speed_ups.get(batch, 1.0) > 1.0 + min_gain for batch in (1, 256))
    accurate = fp32_accuracy - int8_accuracy <= MAX_ACCURACY_LOSS_POINTS
    print(
        f"\nVerdict: faster at batch 1 and 256 by more than {min_gain:.0%}: {faster}; loses at "
        f"most {MAX_ACCURACY_LOSS_POINTS} points: {accurate}; ship: {faster and accurate}"
    )
    return faster and accurate


def main(argv: list[str] | None = None) -> int:
    """Quantise, measure both models, print the tables and the verdict."""
    arguments = _parse(argv)
    if arguments.quick:
        arguments.batch_sizes, arguments.seconds, arguments.write = [1, 256], 0.05, False
    images, labels = mnist_test_set(1000 if arguments.quick else None)
    with workspace(arguments.model) as (workdir, model, _):
        quantized = workdir / "mnist_mlp.int8.onnx"
        quantize_dynamic(
            model, quantized, weight_type=QuantType.QInt8, nodes_to_exclude=head_nodes(model)
        )
        models = {"fp32": session(model), "int8": session(quantized)}
        (fp32_accuracy, fp32_digits), (int8_accuracy, int8_digits) = (
            accuracy(loaded, images, labels) for loaded in models.values()
        )
        same_digit = 100.0 * float(np.mean(fp32_digits == int8_digits))
        rows = speed_rows(models, images, arguments.batch_sizes, arguments.seconds)
        sizes = [path.stat().st_size / 1e6 for path in (model, quantized)]
        print(f"Conditions: {conditions(model)}; {len(images):,} MNIST test images")
        print_table(
            "Accuracy",
            ["model", "file MB", "test accuracy", "same digit as fp32"],
            [
                ["fp32", f"{sizes[0]:.2f}", f"{fp32_accuracy:.2f} %", "100.00 %"],
                [
                    "int8",
                    f"{sizes[1]:.2f}",
                    f"{int8_accuracy:.2f} %",
                    f"{same_digit:.2f} %",
                ],
            ],
        )
        print_table("Speed (images/s)", ["batch", "fp32", "int8", "int8 / fp32"], rows)
        ships = _verdict(rows, fp32_accuracy, int8_accuracy, arguments.min_gain)
        if ships and arguments.write:
            write_int8(quantized, model, int8_accuracy, same_digit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
