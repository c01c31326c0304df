"""What one model call holds in memory, against what the in-flight budget charges for it.

Each measurement runs in a fresh interpreter: the model is loaded and warmed up as the service
loads it, a batch of random images is made, and the call is made ``--calls`` times, as the
service makes it for a V2 request that names no outputs (every output of the card). A call
holds what it adds to the peak resident set above the resident set just before it
(``/proc/self/clear_refs`` resets the peak); the figure is the most any of the calls added.
onnxruntime's arena keeps what a call took and a later call of the same batch may take a
block of its own beside it: both count. Linux only (``VmHWM``). ``--json`` prints one JSON
object a line instead of the table.

    python -m benchmarks.call_memory
    python -m benchmarks.call_memory --images 16384 --json
    python -m benchmarks.call_memory --model models/mnist_mlp.int8.onnx

Without ``--model``, both shipped models (fp32 and int8).
"""

import argparse
import json
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks.report import conditions, print_table
from benchmarks.run import parser_for
from service.inference.classifier import IMAGE_SIDE, Classifier
from service.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHIPPED = [
    PROJECT_ROOT / "models" / "mnist_mlp.onnx",
    PROJECT_ROOT / "models" / "mnist_mlp.int8.onnx",
]
ROW = IMAGE_SIDE * IMAGE_SIDE


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def held_bytes(model: Path, images: int, calls: int) -> int:
    """In this process: the most one of ``calls`` calls on ``images`` random images adds to the
    peak resident set above the resident set just before it."""
    classifier = Classifier.from_files(model, model.with_suffix(".json"))
    names = [output.name for output in classifier.card.outputs]
    batch = np.random.default_rng(0).integers(0, 256, (images, IMAGE_SIDE, IMAGE_SIDE), np.uint8)
    held = 0
    for _ in range(calls):
        before = _status_kib("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        classifier.run(names, batch)
        held = max(held, (_status_kib("VmHWM") - before) * 1024)
    return held


def charged_bytes(model: Path, images: int) -> int:
    """What the in-flight budget charges a V2 request of ``images`` images on ``model``."""
    classifier = Classifier.from_files(model, model.with_suffix(".json"))
    return classifier.call_bytes([[images, IMAGE_SIDE, IMAGE_SIDE]], Settings().max_batch_size)


def measure(model: Path, images: int, calls: int) -> dict[str, object]:
    """One measurement in a fresh interpreter, and the charge."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as fresh:
        held = fresh.submit(held_bytes, model, images, calls).result()
    charged = charged_bytes(model, images)
    return {
        "model": model.name,
        "images": images,
        "held_bytes": held,
        "held_per_element": held / (images * ROW),
        "charged_bytes": charged,
        "charged_per_element": charged / (images * ROW),
    }


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = parser_for(__doc__.split("\n\n")[0])
    parser.add_argument(
        "--images", type=int, nargs="+", default=[16_384, 4096, 1000], help="batch sizes"
    )
    parser.add_argument("--calls", type=int, default=3, help="calls per measurement")
    parser.add_argument("--json", action="store_true", help="one JSON object a line")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    arguments = _arguments(argv)
    if arguments.calls < 1 or any(images < 1 for images in arguments.images):
        sys.exit("--calls and --images must be positive")
    models = SHIPPED if arguments.model is None else [arguments.model]
    if arguments.quick:
        models, arguments.images, arguments.calls = models[:1], [128], 1
    results = [
        measure(model, images, arguments.calls) for model in models for images in arguments.images
    ]
    if arguments.json:
        for result in results:
            print(json.dumps(result))
        return
    print(conditions(models[0]))
    print_table(
        "What a model call holds, and what the budget charges",
        ["model", "images", "held MiB", "held B/element", "charged MiB", "charged B/element"],
        [
            [
                result["model"],
                result["images"],
                result["held_bytes"] / 2**20,
                result["held_per_element"],
                result["charged_bytes"] / 2**20,
                result["charged_per_element"],
            ]
            for result in results
        ],
    )


if __name__ == "__main__":
    main()
