"""Open Inference Protocol (KServe V2) REST routes, with Triton's binary tensor data extension."""

from typing import Any

from fastapi import APIRouter, Request, Response

from service.inference.dataplane import DataPlane
from service.inference.dataplane import server_metadata as describe_server
from service.inference.protocol import (
    InferenceRequest,
    InferenceResponse,
    LiveResponse,
    ModelMetadata,
    ModelReadyResponse,
    ReadyResponse,
    ServerMetadata,
    inline_schema,
)
from service.inference.wire import HEADER_LENGTH, encode_response, parse_inference_body
from service.inference.work import run_request_work
from service.rest.content_encoding import decode_content
from service.rest.dependencies import DataPlaneDep
from service.rest.openapi import error_responses

router = APIRouter(prefix="/v2", tags=["v2"])

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


@router.get("", summary="Server metadata")
async def server_metadata() -> ServerMetadata:
    """Name, version and the protocol extensions served."""
    return describe_server()


@router.get("/health/live", summary="Liveness")
async def live() -> LiveResponse:
    """The process answers; says nothing about the model."""
    return LiveResponse(live=True)


@router.get("/health/ready", responses=error_responses(503), summary="Readiness")
async def ready(dataplane: DataPlaneDep) -> ReadyResponse:
    """Ready once the model is loaded and warmed up (503 until then)."""
    return ReadyResponse(ready=dataplane.ready())


@router.get("/models/{model_name}", responses=error_responses(404, 503), summary="Model metadata")
async def model_metadata(dataplane: DataPlaneDep, model_name: str) -> ModelMetadata:
    """Platform, versions, and the input and output tensors from the model card."""
    return dataplane.model_metadata(model_name)


@router.get(
    "/models/{model_name}/versions/{model_version}",
    responses=error_responses(404, 503),
    summary="Model version metadata",
)
async def model_version_metadata(
    dataplane: DataPlaneDep, model_name: str, model_version: str
) -> ModelMetadata:
    """The same as the unversioned route, for the one version served."""
    return dataplane.model_metadata(model_name, model_version)


@router.get(
    "/models/{model_name}/ready", responses=error_responses(404, 503), summary="Model readiness"
)
async def model_ready(dataplane: DataPlaneDep, model_name: str) -> ModelReadyResponse:
    """200 once the model is loaded; 503 before."""
    return dataplane.model_ready(model_name)


@router.get(
    "/models/{model_name}/versions/{model_version}/ready",
    responses=error_responses(404, 503),
    summary="Model version readiness",
)
async def model_version_ready(
    dataplane: DataPlaneDep, model_name: str, model_version: str
) -> ModelReadyResponse:
    """200 once that version is loaded; 503 before."""
    return dataplane.model_ready(model_name, model_version)


def _infer_body(
    dataplane: DataPlane,
    model_name: str,
    model_version: str | None,
    body: bytes,
    content_encoding: str | None,
    header_length: str | None,
) -> tuple[bytes, int | None]:
    """Synchronous on purpose: large bodies run off the event loop."""
    body = decode_content(body, content_encoding, dataplane.settings.max_request_bytes)
    result = dataplane.infer(model_name, model_version, parse_inference_body(body, header_length))
    encoded = encode_response(result)
    return encoded.body, encoded.json_length


async def _infer(
    request: Request, dataplane: DataPlane, model_name: str, model_version: str | None
) -> Response:
    dataplane.model(model_name, model_version)
    body = await request.body()
    content_encoding = request.headers.get("content-encoding")
    header_length = request.headers.get(HEADER_LENGTH)
    small = len(body) <= INLINE_BODY_BYTES and content_encoding is None
    content, json_length = await run_request_work(
        dataplane.heavy_work_limiter,
        _infer_body,
        dataplane,
        model_name,
        model_version,
        body,
        content_encoding,
        header_length,
        inline=small,
    )
    if json_length is None:
        return Response(content, media_type="application/json")
    return Response(
        content,
        media_type="application/octet-stream",
        headers={HEADER_LENGTH: str(json_length)},
    )


@router.post("/models/{model_name}/infer", summary="Inference", **INFER_ROUTE)
async def infer(request: Request, dataplane: DataPlaneDep, model_name: str) -> Response:
    """Classify a batch of uint8 images `image` [N, 28, 28] into `probabilities` [N, 10]."""
    return await _infer(request, dataplane, model_name, None)


@router.post(
    "/models/{model_name}/versions/{model_version}/infer",
    summary="Inference on a model version",
    **INFER_ROUTE,
)
async def infer_version(
    request: Request, dataplane: DataPlaneDep, model_name: str, model_version: str
) -> Response:
    """The same as the unversioned route, for the one version served."""
    return await _infer(request, dataplane, model_name, model_version)
