"""In-process: onnxruntime throughput by batch size, and the service's per-image path without HTTP.

Run: ``python -m benchmarks.inference`` (about 30 s). The first table compares the service's
session options (one intra-op thread, no spinning) with onnxruntime's defaults (a thread per core,
spinning); "CPU / wall" above 1 is cores burnt by helper threads. The second table times each
stage a ``POST /predict`` of one PNG goes through, with the service's own functions.
"""

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime
import orjson
from PIL import Image
from pydantic import TypeAdapter

from benchmarks.data import mnist_test_set, multipart_body, png_bytes
from benchmarks.report import Timing, conditions, print_table, ratio, time_call
from benchmarks.run import parser_for, workspace
from service.inference.classifier import Classifier
from service.inference.dataplane import _predictions
from service.inference.limits import ImageLimits, Upload
from service.inference.preprocessing import image_to_array
from service.inference.schemas import PredictResponse
from service.inference.verdict import digit_verdicts
from service.rest.multipart import parse_multipart
from service.settings import Settings

BATCH_SIZES = (1, 32, 256, 4096)


def _parse(argv: list[str] | None):
    parser = parser_for(__doc__.splitlines()[0])
    parser.add_argument(
        "--batch-sizes", type=int, nargs="+", default=list(BATCH_SIZES), help="images per call"
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="time spent on each figure")
    return parser.parse_args(argv)


def session_rows(model: Path, images: np.ndarray, batch_sizes: list[int], budget: float) -> list:
    """images/s with the service's session and with onnxruntime's default options."""
    service = Classifier.from_files(model, model.with_suffix(".json")).session
    default = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    rows = []
    for batch in batch_sizes:
        feed = {"image": np.ascontiguousarray(np.resize(images, (batch, 28, 28)))}
        ours, theirs = (
            time_call(lambda session=session, feed=feed: session.run(None, feed), budget)
            for session in (service, default)
        )
        rows.append(
            [
                batch,
                batch / ours.wall,
                f"{ours.cpu / batch * 1e6:.2f}",
                batch / theirs.wall,
                f"{theirs.cpu / batch * 1e6:.2f}",
                ratio(theirs.wall, ours.wall),
                ratio(theirs.cpu, ours.cpu),
            ]
        )
    return rows


@dataclass(frozen=True)
class OneImage:
    """Everything a one-PNG ``POST /predict`` goes through, prepared once."""

    classifier: Classifier
    limits: ImageLimits
    png: bytes
    body: bytes
    boundary: dict[bytes, bytes]
    uploads: list[Upload]

    @classmethod
    def prepare(cls, model: Path, pixels: np.ndarray) -> "OneImage":
        """Load the model and encode ``pixels`` as the PNG upload of a request."""
        settings = Settings(model_path=model)
        png = png_bytes(pixels)
        body, content_type = multipart_body("file", [png])
        return cls(
            classifier=Classifier.from_files(model, model.with_suffix(".json")),
            limits=ImageLimits(settings.max_image_pixels, settings.max_image_side),
            png=png,
            body=body,
            boundary={b"boundary": content_type.split("boundary=")[1].encode()},
            uploads=[Upload(data=png, filename="0.png")],
        )

    def outputs(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The model call as the route makes it: probabilities, and digit_score if there is one."""
        names = tuple(filter(None, (self.classifier.output_name, self.classifier.score_name)))
        probabilities, *scores = self.classifier.run(names, images)
        return probabilities, scores[0] if scores else None

    def answer(self, images: np.ndarray, outputs: tuple[np.ndarray, np.ndarray | None]) -> dict:
        """The response body as the route builds it."""
        card = self.classifier.card
        probabilities, scores = outputs
        digits = self.classifier.digits(probabilities)
        verdicts = digit_verdicts(images, scores, card.digit_score)
        predictions = _predictions(digits, probabilities, verdicts, self.uploads)
        return {"model": {"name": card.name, "version": card.version}, "predictions": predictions}


def _stages(image: OneImage) -> dict[str, Callable[[], object]]:
    """Each step of the route, with its own functions."""
    batch = image_to_array(image.png, "auto", image.limits)[np.newaxis]
    outputs = image.outputs(batch)
    return {
        "multipart parse": lambda: parse_multipart(image.body, image.boundary),
        "PNG decode + preprocess": lambda: image_to_array(image.png, "auto", image.limits),
        "predict (onnxruntime)": lambda: image.outputs(batch),
        "response: build, orjson": lambda: orjson.dumps(image.answer(batch, outputs)),
    }


def _alternatives(image: OneImage) -> dict[str, Callable[[], object]]:
    """What the reference does instead, and FastAPI's validate-then-serialize response path."""
    session = image.classifier.session
    blank = np.zeros((1, 28, 28), np.uint8)
    outputs = image.outputs(blank)
    adapter = TypeAdapter(PredictResponse)

    def reference_path() -> object:
        decoded = Image.open(io.BytesIO(image.png)).convert("L")
        output = session.run(None, {"image": np.asarray(decoded, dtype=np.uint8)[np.newaxis]})
        return output[0][0].tolist()

    return {
        "reference: decode + predict": reference_path,
        "response: build, validate, pydantic JSON (FastAPI)": lambda: adapter.dump_json(
            adapter.validate_python(image.answer(blank, outputs)), exclude_none=True
        ),
    }


def stage_rows(model: Path, pixels: np.ndarray, budget: float) -> list:
    """µs per stage and their total, then the alternatives for comparison."""
    image = OneImage.prepare(model, pixels)
    stages = {name: time_call(stage, budget) for name, stage in _stages(image).items()}
    stages["total: the service's path"] = Timing(
        sum(timing.wall for timing in stages.values()),
        sum(timing.cpu for timing in stages.values()),
    )
    for name, stage in _alternatives(image).items():
        stages[name] = time_call(stage, budget)
    return [
        [name, f"{timing.wall * 1e6:.1f}", f"{timing.cpu * 1e6:.1f}"]
        for name, timing in stages.items()
    ]


def main(argv: list[str] | None = None) -> int:
    """Print the two tables and the conditions they were measured under."""
    arguments = _parse(argv)
    budget = 0.05 if arguments.quick else arguments.seconds
    batch_sizes = [1, 32] if arguments.quick else arguments.batch_sizes
    with workspace(arguments.model) as (_, model, _):
        images, _ = mnist_test_set(max(batch_sizes))
        print(f"Conditions: {conditions(model)}")
        print_table(
            "onnxruntime in-process",
            [
                "batch",
                "service options images/s",
                "CPU µs/image",
                "default options images/s",
                "CPU µs/image",
                "speed service / default",
                "CPU default / service",
            ],
            session_rows(model, images, batch_sizes, budget),
        )
        print_table(
            "The service's path for one PNG, without HTTP",
            ["stage", "wall µs per image", "CPU µs per image"],
            stage_rows(model, images[0], budget),
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
