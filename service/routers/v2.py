"""Open Inference Protocol (KServe V2) REST routes, with Triton's binary tensor data extension."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from service.classifier import Classifier
from service.dependencies import ClassifierDep, MetricsDep, SettingsDep
from service.errors import NotFound
from service.metrics import Metrics
from service.model_card import ModelCard
from service.request_work import run_request_work
from service.schemas import error_responses
from service.settings import Settings
from service.v2_body import HEADER_LENGTH
from service.v2_inference import run_inference
from service.v2_schemas import (
    InferenceRequest,
    InferenceResponse,
    LiveResponse,
    ModelMetadata,
    ModelReadyResponse,
    ReadyResponse,
    ServerMetadata,
    inline_schema,
)

router = APIRouter(prefix="/v2", tags=["v2"])

EXTENSIONS = ["binary_tensor_data"]
PLATFORM = "onnx_onnxv1"
# Parsing and decoding a small body costs less than the hop to a worker thread.
INLINE_BODY_BYTES = 64 * 1024
BINARY_CONTENT = {"schema": {"type": "string", "format": "binary"}}
INFER_OPENAPI = {
    "requestBody": {
        "required": True,
        "description": "A JSON inference request; or, with the header "
        f"`{HEADER_LENGTH}: <bytes of JSON>`, that JSON followed by the raw little-endian "
        "bytes of each input whose `parameters.binary_data_size` is set, in input order.",
        "content": {
            "application/json": {"schema": inline_schema(InferenceRequest)},
            "application/octet-stream": BINARY_CONTENT,
        },
    }
}
INFER_RESPONSES = error_responses(400, 404, 413, 415, 503) | {
    200: {
        "description": "JSON; or, when an output is asked for as binary data, a JSON header of "
        f"`{HEADER_LENGTH}` bytes followed by the raw outputs.",
        "content": {"application/octet-stream": BINARY_CONTENT},
    }
}

INFER_ROUTE: dict[str, Any] = {
    "response_model": InferenceResponse,
    "responses": INFER_RESPONSES,
    "openapi_extra": INFER_OPENAPI,
}


def _check_model(classifier: Classifier, model_name: str, model_version: str | None) -> None:
    card = classifier.card
    if model_name != card.name:
        raise NotFound(
            f"unknown model {model_name!r}; this server serves {card.name!r}", "unknown_model"
        )
    if model_version is not None and model_version != card.version:
        raise NotFound(
            f"model {card.name!r} has no version {model_version!r}; its versions: {card.version!r}",
            "unknown_version",
        )


async def served_model(classifier: ClassifierDep, model_name: str) -> Classifier:
    """The model named in the path, in whatever version is served."""
    _check_model(classifier, model_name, None)
    return classifier


async def served_model_version(
    classifier: ClassifierDep, model_name: str, model_version: str
) -> Classifier:
    """The model and version named in the path."""
    _check_model(classifier, model_name, model_version)
    return classifier


ServedModel = Annotated[Classifier, Depends(served_model)]
ServedModelVersion = Annotated[Classifier, Depends(served_model_version)]


@router.get("", summary="Server metadata")
async def server_metadata(request: Request) -> ServerMetadata:
    """Name, version and the protocol extensions served."""
    return ServerMetadata(
        name=request.app.title, version=request.app.version, extensions=EXTENSIONS
    )


@router.get("/health/live", summary="Liveness")
async def live() -> LiveResponse:
    """The process answers; says nothing about the model."""
    return LiveResponse(live=True)


@router.get("/health/ready", responses=error_responses(503), summary="Readiness")
async def ready(classifier: ClassifierDep) -> ReadyResponse:
    """Ready once the model is loaded and warmed up (``ClassifierDep`` answers 503 until then)."""
    return ReadyResponse(ready=True)


def _metadata(card: ModelCard) -> ModelMetadata:
    return ModelMetadata(
        name=card.name,
        versions=[card.version],
        platform=PLATFORM,
        inputs=card.inputs,
        outputs=card.outputs,
    )


@router.get("/models/{model_name}", responses=error_responses(404, 503), summary="Model metadata")
async def model_metadata(classifier: ServedModel) -> ModelMetadata:
    """Platform, versions, and the input and output tensors from the model card."""
    return _metadata(classifier.card)


@router.get(
    "/models/{model_name}/versions/{model_version}",
    responses=error_responses(404, 503),
    summary="Model version metadata",
)
async def model_version_metadata(classifier: ServedModelVersion) -> ModelMetadata:
    """The same as the unversioned route, for the one version served."""
    return _metadata(classifier.card)


def _model_ready(classifier: Classifier) -> ModelReadyResponse:
    return ModelReadyResponse(
        name=classifier.card.name, version=classifier.card.version, ready=True
    )


@router.get(
    "/models/{model_name}/ready", responses=error_responses(404, 503), summary="Model readiness"
)
async def model_ready(classifier: ServedModel) -> ModelReadyResponse:
    """200 once the model is loaded; 503 before."""
    return _model_ready(classifier)


@router.get(
    "/models/{model_name}/versions/{model_version}/ready",
    responses=error_responses(404, 503),
    summary="Model version readiness",
)
async def model_version_ready(classifier: ServedModelVersion) -> ModelReadyResponse:
    """200 once that version is loaded; 503 before."""
    return _model_ready(classifier)


async def _infer(
    request: Request, classifier: Classifier, settings: Settings, metrics: Metrics
) -> Response:
    body = await request.body()
    content_encoding = request.headers.get("content-encoding")
    arguments = (classifier, body, content_encoding, request.headers.get(HEADER_LENGTH))
    small = len(body) <= INLINE_BODY_BYTES and content_encoding is None
    return await run_request_work(
        request, run_inference, *arguments, settings, metrics, inline=small
    )


@router.post("/models/{model_name}/infer", summary="Inference", **INFER_ROUTE)
async def infer(
    request: Request, classifier: ServedModel, settings: SettingsDep, metrics: MetricsDep
) -> Response:
    """Classify a batch of uint8 images `image` [N, 28, 28] into `probabilities` [N, 10]."""
    return await _infer(request, classifier, settings, metrics)


@router.post(
    "/models/{model_name}/versions/{model_version}/infer",
    summary="Inference on a model version",
    **INFER_ROUTE,
)
async def infer_version(
    request: Request, classifier: ServedModelVersion, settings: SettingsDep, metrics: MetricsDep
) -> Response:
    """The same as the unversioned route, for the one version served."""
    return await _infer(request, classifier, settings, metrics)
