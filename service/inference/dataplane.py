"""The dataplane: every operation of the service on plain Python values, for any transport.

REST (and gRPC) translate their requests into these calls and the answers (or the
``ServiceError`` raised) back into their own form; no check lives in a transport.
"""

from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter_ns
from typing import TypeVar

import anyio
import numpy as np

from service.inference import tracing
from service.inference.batching import model_calls
from service.inference.budget import InflightBudget
from service.inference.classifier import Classifier
from service.inference.codec import RequestedOutput, decode_input, requested_outputs
from service.inference.errors import BadRequest, ServiceError
from service.inference.image_files import ImageHeader, read_header
from service.inference.limits import (
    SMALL_BODY_BYTES,
    ImageLimits,
    PixelBudget,
    Upload,
    check_uploads,
)
from service.inference.metrics import Metrics
from service.inference.model_config import model_config
from service.inference.preprocessing import InvertMode, image_to_array
from service.inference.protocol import (
    InferenceRequest,
    ModelMetadata,
    ModelReadyResponse,
    RequestInput,
    ServerMetadata,
)
from service.inference.repository import ModelRepository
from service.inference.statistics import RequestTiming, Statistics
from service.inference.v2 import InferRequest, InferResponse
from service.inference.verdict import digit_verdicts
from service.inference.work import run_request_work
from service.settings import Settings

SERVER_NAME = "mnist-mlp"
SERVER_VERSION = "1.0.0"
# Triton's names of the protocol extensions both transports serve; the repository's only with
# model control on (its routes and methods are off otherwise).
EXTENSIONS = ["binary_tensor_data", "model_configuration", "statistics"]
REPOSITORY_EXTENSION = "model_repository"
PLATFORM = "onnx_onnxv1"
Result = TypeVar("Result")


def server_metadata(settings: Settings) -> ServerMetadata:
    """Name, version and the protocol extensions served; known before any model loads."""
    repository = [REPOSITORY_EXTENSION] if settings.model_control else []
    extensions = [*EXTENSIONS, *repository]
    return ServerMetadata(name=SERVER_NAME, version=SERVER_VERSION, extensions=extensions)


class DataPlane:
    """The application context: settings, metrics, the model repository, the heavy-work limiter
    and the model calls. A transport builds it with the app and serves a repository's
    models with ``serve_repository`` (REST: in its lifespan); until then, and after
    ``stop_serving``, model operations answer 503."""

    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.heavy_work_limiter = anyio.CapacityLimiter(settings.heavy_work_threads)
        self.image_limits = ImageLimits(
            max_pixels=settings.max_image_pixels,
            max_side=settings.max_image_side,
            max_decode_bytes=settings.max_image_decode_bytes,
        )
        self.repository = ModelRepository.from_settings(settings)
        self.statistics = Statistics()
        # Traces when the OTEL_* variables ask for them (service.inference.tracing), else None.
        self.tracer_provider = tracing.start_tracing()
        self.model_calls = model_calls(self.metrics, settings.dynamic_batching, self.statistics)
        # service.inference.worker_states: with several workers, NotReady while they disagree.
        self.workers_agree: Callable[[], None] | None = None
        # One per process, shared by REST and gRPC (service.inference.budget).
        self.inflight = InflightBudget(
            settings.max_inflight_bytes,
            settings.inflight_wait_seconds,
            observe=self.metrics.inflight_bytes.set,
        )

    def serve_repository(self, repository: ModelRepository) -> None:
        """Serve ``repository``'s loaded models from now on."""
        self.repository = repository

    def stop_serving(self) -> None:
        """Stop serving every model: model operations answer 503 again."""
        self.repository = ModelRepository.from_settings(self.settings)

    def model(self, name: str | None = None, version: str | None = None) -> Classifier:
        """The model version asked for (None: the default model, or its default version)."""
        return self.repository.get(name, version)

    def ready(self) -> bool:
        """True while a model serves; a ``NotReady`` (503) before, or once all are unloaded, or
        while ``workers_agree`` (set with several workers) raises it."""
        self.repository.default_model_name()
        if self.workers_agree is not None:
            self.workers_agree()
        return True

    def model_metadata(self, name: str, version: str | None = None) -> ModelMetadata:
        card = self.model(name, version).card
        versions = [version] if version else list(self.repository.served(name).versions)
        return ModelMetadata(
            name=card.name,
            versions=versions,
            platform=PLATFORM,
            inputs=card.inputs,
            outputs=card.outputs,
        )

    def model_config(self, name: str, version: str | None = None) -> dict[str, object]:
        """Triton's ``ModelConfig`` (JSON form) of the version asked for, or the default one."""
        return model_config(self.model(name, version).card, self.settings)

    def model_statistics(
        self, name: str | None = None, version: str | None = None
    ) -> dict[str, object]:
        """Triton's statistics of one version, of every version of ``name``, or (no name) of
        every version served."""
        if name is not None and version is not None:
            return self.statistics.report([self.model(name, version).card])
        repository = self.repository
        models = repository.served_models() if name is None else [repository.served(name)]
        return self.statistics.report(
            [model.card for served in models for model in served.versions.values()]
        )

    def model_ready(self, name: str, version: str | None = None) -> ModelReadyResponse:
        card = self.model(name, version).card
        return ModelReadyResponse(name=card.name, version=card.version, ready=True)

    async def infer(self, classifier: Classifier, request: InferRequest) -> InferResponse:
        """One V2 inference by ``classifier`` (``model``'s answer, asked for before the request
        was read) on the event loop, for small bodies (large ones go to ``infer_now`` in a
        worker thread)."""
        with self.statistics.of(classifier.card).measure() as timing:
            call = self._inference_call(classifier, request, timing)
            arrays = await self.model_calls.run(classifier, call.names, call.images, timing)
            return self._inference_result(call, arrays)

    def infer_now(self, classifier: Classifier, request: InferRequest) -> InferResponse:
        """One V2 inference in its own model call, synchronous: for large bodies, off the loop."""
        with self.statistics.of(classifier.card).measure() as timing:
            call = self._inference_call(classifier, request, timing)
            arrays = self.model_calls.run_now(classifier, call.names, call.images, (timing,))
            return self._inference_result(call, arrays)

    def _inference_call(
        self, classifier: Classifier, received: InferRequest, timing: RequestTiming
    ) -> "InferenceCall":
        request = received.envelope
        tensor = _image_input(request, classifier)
        binary = received.raw_inputs.get(tensor.name)
        images = decode_input(
            tensor, classifier.card.inputs[0], binary, self.settings.max_batch_size
        )
        outputs = requested_outputs(request, classifier.card)
        # The probabilities always run, in the same call, so that the metrics count every one.
        names = tuple(dict.fromkeys([classifier.output_name, *(out.spec.name for out in outputs)]))
        timing.images, timing.decoded = len(images), perf_counter_ns()
        return InferenceCall(classifier, request.id, images, outputs, names)

    def _inference_result(self, call: "InferenceCall", arrays: list[np.ndarray]) -> InferResponse:
        classifier, card = call.classifier, call.classifier.card
        by_name = dict(zip(call.names, arrays, strict=True))
        self.metrics.observe_inference(
            card.name, card.version, classifier.digits(by_name[classifier.output_name])
        )
        results = [(output, by_name[output.spec.name]) for output in call.outputs]
        return InferResponse(card.name, card.version, call.id, results)

    async def predict(
        self, classifier: Classifier, uploads: list[Upload], invert: InvertMode
    ) -> dict[str, object]:
        """Decode each image to MNIST's 28x28 form and classify them all in one model call by
        ``classifier`` (``model``'s answer, asked for before the request was read); the answer
        is ``PredictResponse``'s fields as plain data."""
        with self.statistics.of(classifier.card).measure() as timing:
            images = await self._decoded_uploads(uploads, invert)
            timing.images, timing.decoded = len(images), perf_counter_ns()
            names = tuple(filter(None, (classifier.output_name, classifier.score_name)))
            probabilities, *scores = await self.model_calls.run(classifier, names, images, timing)
            digits = classifier.digits(probabilities)
            card = classifier.card
            self.metrics.observe_inference(card.name, card.version, digits)
            verdicts = digit_verdicts(images, scores[0] if scores else None, card.digit_score)
            predictions = _predictions(digits, probabilities, verdicts, uploads)
            model = {"name": card.name, "version": card.version}
            return {"model": model, "predictions": predictions}

    async def _decoded_uploads(self, uploads: list[Upload], invert: InvertMode) -> np.ndarray:
        """The uploads checked and decoded, small ones on the loop, others in a worker thread."""
        check_uploads(uploads, self.settings.max_images_per_request, self.settings.max_image_bytes)
        small = sum(len(upload.data) for upload in uploads) <= SMALL_BODY_BYTES
        limiter, limits = self.heavy_work_limiter, self.image_limits
        headers = await run_request_work(
            limiter, _read_headers, uploads, limits, self.settings.max_request_pixels, inline=small
        )
        # Decoded one after another: the largest decode is what the request holds at its peak.
        decode_bytes = max(header.decode_bytes for header in headers)
        if small and decode_bytes <= SMALL_BODY_BYTES:
            # Small work is done inline and not charged, as a small body is not (rest/bodies.py).
            return _decode_all(uploads, invert, limits)
        async with self.inflight.reserve(decode_bytes):
            return await run_request_work(
                limiter, _decode_all, uploads, invert, limits, inline=False
            )


# Built for every request: slots dataclasses are the cheapest to build.
@dataclass(slots=True)
class InferenceCall:
    """A validated V2 request, decoded: what its model call needs and what its answer keeps."""

    classifier: Classifier
    id: str | None
    images: np.ndarray
    outputs: list[RequestedOutput]
    names: tuple[str, ...]


def _image_input(request: InferenceRequest, classifier: Classifier) -> RequestInput:
    """Exactly the card's one input, by name."""
    expected = classifier.input_name
    names = [tensor.name for tensor in request.inputs]
    for name in names:
        if name != expected:
            raise BadRequest(
                f"unknown input {name!r}; model {classifier.card.name!r} takes one input, "
                f"{expected!r}",
                "unknown_input",
            )
    if len(names) > 1:
        raise BadRequest(f"input {expected!r} is given {len(names)} times", "duplicate_input")
    return request.inputs[0]


def _read_headers(
    uploads: list[Upload], limits: ImageLimits, max_request_pixels: int
) -> list[ImageHeader]:
    """Every header checked and charged to the request's pixel budget before any pixel is
    decoded (one image alone is bounded by ``max_image_pixels``, which the budget is at least)."""
    budget = PixelBudget(max_request_pixels)

    def charged(data: bytes) -> ImageHeader:
        header = read_header(data, limits)
        budget.spend(header.width, header.height)
        return header

    return _each_image(uploads, charged)


def _decode_all(uploads: list[Upload], invert: InvertMode, limits: ImageLimits) -> np.ndarray:
    arrays = _each_image(uploads, lambda data: image_to_array(data, invert, limits))
    return arrays[0][np.newaxis] if len(arrays) == 1 else np.stack(arrays)


def _each_image(uploads: list[Upload], work: Callable[[bytes], Result]) -> list[Result]:
    """``work`` on each upload's bytes; an error names the image it is about."""
    results = []
    for position, upload in enumerate(uploads):
        try:
            results.append(work(upload.data))
        except ServiceError as error:
            if len(uploads) == 1 and upload.filename is None:
                raise
            name = upload.filename or f"image {position + 1}"
            raise type(error)(f"{name}: {error.message}", error.reason) from None
    return results


def _predictions(
    digits: list[str], probabilities: np.ndarray, verdicts: list[dict], uploads: list[Upload]
) -> list[dict[str, object]]:
    """``Prediction``'s fields as plain data, without the filename when none was sent; the
    confidence is the most probable class's probability, the verdict says if it is a digit."""
    predictions: list[dict[str, object]] = []
    for row, digit, verdict, upload in zip(
        probabilities.tolist(), digits, verdicts, uploads, strict=True
    ):
        prediction = {"digit": int(digit), "confidence": max(row), "probabilities": row, **verdict}
        if upload.filename is not None:
            prediction["filename"] = upload.filename
        predictions.append(prediction)
    return predictions
