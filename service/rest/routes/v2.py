"""Open Inference Protocol (KServe V2) REST routes, with Triton's binary tensor data extension.

Each operation has one handler; its ``/versions/{model_version}`` path is stacked on it, and the
version reaches the dataplane as None on the unversioned path. Inference is a ``DirectRoute``.
"""

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio.to_thread
from fastapi import APIRouter, Request, Response

from service.inference.binary_data import HEADER_LENGTH, split_body
from service.inference.classifier import Classifier
from service.inference.costs import json_parse_bytes
from service.inference.dataplane import DataPlane
from service.inference.dataplane import server_metadata as describe_server
from service.inference.errors import PayloadTooLarge
from service.inference.limits import SMALL_BODY_BYTES
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
from service.inference.tracing import span
from service.inference.v2 import InferRequest, InferResponse
from service.rest.asgi import header, whole_body
from service.rest.content_encoding import decode_content
from service.rest.dependencies import DataPlaneDep, ModelPath, dataplane_of
from service.rest.openapi import error_responses
from service.rest.routing import DirectRoute

router = APIRouter(prefix="/v2", tags=["v2"])

Result = TypeVar("Result")
JSON = "application/json"
BINARY = "application/octet-stream"
BINARY_CONTENT = {"schema": {"type": "string", "format": "binary"}}
VERSION_PARAMETER = {
    "parameters": [
        {"name": "model_version", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
}
INFER_OPENAPI = {
    "requestBody": {
        "required": True,
        "description": "A JSON inference request (whatever the Content-Type). With the header "
        f"`{HEADER_LENGTH}: <bytes of JSON>` (Triton's binary tensor extension, as tritonclient "
        "sends it), that JSON is followed by the raw little-endian bytes of each input whose "
        "`parameters.binary_data_size` is set, in input order. OpenAPI cannot tie a body's "
        "form to a header, so that form is told here rather than declared as a second type.",
        "content": {"application/json": {"schema": inline_schema(InferenceRequest)}},
    }
}
INFER_RESPONSES = error_responses(400, 404, 413, 415, 503) | {
    200: {
        "description": "JSON; or, when an output is asked for as binary data, a JSON header of "
        f"`{HEADER_LENGTH}` bytes followed by the raw outputs.",
        "content": {"application/octet-stream": BINARY_CONTENT},
    }
}
MODEL_RESPONSES = error_responses(404, 503)
HEADER_LENGTH_KEY = HEADER_LENGTH.lower().encode("latin-1")
Endpoint = Callable[..., Awaitable[Any]]


@router.get("", summary="Server metadata")
async def server_metadata(dataplane: DataPlaneDep) -> ServerMetadata:
    """Name, version and the protocol extensions served."""
    return describe_server(dataplane.settings)


@router.get("/health/live", summary="Liveness")
async def live() -> LiveResponse:
    """The process answers; says nothing about the model."""
    return LiveResponse(live=True)


@router.get("/health/ready", responses=error_responses(503), summary="Readiness")
async def ready(dataplane: DataPlaneDep) -> ReadyResponse:
    """Ready once the model is loaded and warmed up (503 until then)."""
    return ReadyResponse(ready=dataplane.ready())


def model_routes(router: APIRouter, suffix: str, summary: str) -> Callable[[Endpoint], Endpoint]:
    """Declare ``endpoint`` on ``/models/{model_name}<suffix>`` and on its version's path, on
    ``router`` (whose prefix is ``/v2``)."""

    def declare(endpoint: Endpoint) -> Endpoint:
        router.get(f"/models/{{model_name}}{suffix}", responses=MODEL_RESPONSES, summary=summary)(
            endpoint
        )
        router.get(
            f"/models/{{model_name}}/versions/{{model_version}}{suffix}",
            responses=MODEL_RESPONSES,
            openapi_extra=VERSION_PARAMETER,
            summary=summary.replace("Model", "Model version"),
        )(endpoint)
        return endpoint

    return declare


@model_routes(router, "", "Model metadata")
async def model_metadata(dataplane: DataPlaneDep, model: ModelPath) -> ModelMetadata:
    """Platform, versions, and the input and output tensors from the model card."""
    return dataplane.model_metadata(*model)


@model_routes(router, "/ready", "Model readiness")
async def model_ready(dataplane: DataPlaneDep, model: ModelPath) -> ModelReadyResponse:
    """200 once the model (or that version) is loaded; 503 before."""
    return dataplane.model_ready(*model)


def _encoded(response: InferResponse) -> Response:
    body, json_length = response.to_rest()
    if json_length is None:
        return Response(body, media_type=JSON)
    return Response(body, media_type=BINARY, headers={HEADER_LENGTH: str(json_length)})


def _json_parse_bytes(body: bytes, header_length: str | None) -> int:
    return json_parse_bytes(split_body(body, header_length)[0])


async def _infer_large(
    dataplane: DataPlane,
    classifier: Classifier,
    body: bytes,
    content_encoding: str | None,
    header_length: str | None,
) -> Response:
    """Each step in a worker thread, and charged to the in-flight budget before it runs (the
    body itself is charged as it is read): the inflated body, its parsed JSON, the model call."""
    inflight, settings = dataplane.inflight, dataplane.settings
    inflated = settings.max_request_bytes if content_encoding is not None else 0
    async with inflight.reserve(inflated) as reservation:
        if content_encoding is not None:
            body = await _in_thread(dataplane, decode_content, body, content_encoding, inflated)
            reservation.shrink(inflated - len(body))
        parse_cost = await _in_thread(dataplane, _json_parse_bytes, body, header_length)
        if parse_cost > inflight.capacity:
            raise PayloadTooLarge(
                f"parsing this {len(body)}-byte JSON body takes about {parse_cost} bytes of "
                f"memory, more than the {inflight.capacity} the service holds for requests in "
                "flight; send large batches as binary tensor data",
                "json_too_costly",
            )
        await reservation.extend(parse_cost)
        received = await _in_thread(dataplane, InferRequest.from_rest, body, header_length)
        shapes = [tensor.shape for tensor in received.envelope.inputs]
        await reservation.extend(classifier.call_bytes(shapes, settings.max_batch_size))
        return await _in_thread(dataplane, _infer_now, dataplane, classifier, received)


def _infer_now(dataplane: DataPlane, classifier: Classifier, received: InferRequest) -> Response:
    return _encoded(dataplane.infer_now(classifier, received))


async def _in_thread(dataplane: DataPlane, function: Callable[..., Result], *arguments) -> Result:
    return await anyio.to_thread.run_sync(
        function, *arguments, limiter=dataplane.heavy_work_limiter
    )


async def infer(request: Request, model_name: str) -> Response:
    """Classify a batch of uint8 images `image` [N, 28, 28] into `probabilities` [N, 10].

    The model first (404 or 503 before the body is read), then the body: a small one on the
    event loop (where concurrent requests may share a model call), a large or compressed one
    in a worker thread."""
    dataplane = dataplane_of(request.app)
    classifier = dataplane.model(model_name, request.path_params.get("model_version"))
    with span("read request"):
        body = await whole_body(request.receive)
    scope = request.scope
    content_encoding = header(scope, b"content-encoding")
    header_length = header(scope, HEADER_LENGTH_KEY)
    if len(body) <= SMALL_BODY_BYTES and content_encoding is None:
        received = InferRequest.from_rest(body, header_length)
        result = await dataplane.infer(classifier, received)
        with span("encode response"):
            return _encoded(result)
    return await _infer_large(dataplane, classifier, body, content_encoding, header_length)


def add_infer_routes(router: APIRouter) -> None:
    """Inference, on the app's own router (as ``predict.add_routes``), both paths."""
    shared: dict[str, Any] = {
        "methods": ["POST"],
        "route_class_override": DirectRoute,
        "response_model": InferenceResponse,
        "responses": INFER_RESPONSES,
        "tags": ["v2"],
    }
    router.add_api_route(
        "/v2/models/{model_name}/infer",
        infer,
        openapi_extra=INFER_OPENAPI,
        summary="Inference",
        **shared,
    )
    router.add_api_route(
        "/v2/models/{model_name}/versions/{model_version}/infer",
        infer,
        openapi_extra=INFER_OPENAPI | VERSION_PARAMETER,
        summary="Inference on a model version",
        **shared,
    )
