"""``POST /predict``: digit images in, digits and probabilities out; a hot route."""

from typing import Annotated

import anyio.to_thread
import orjson
from fastapi import APIRouter, Query, Request, Response

from service.inference.limits import SMALL_BODY_BYTES
from service.inference.preprocessing import InvertMode
from service.inference.schemas import PredictResponse
from service.inference.tracing import span
from service.rest.asgi import header, whole_body
from service.rest.dependencies import dataplane_of
from service.rest.openapi import error_responses
from service.rest.routing import DirectRoute
from service.rest.uploads import uploads_from_body

JSON = "application/json"
IMAGE_CONTENT = {"schema": {"type": "string", "format": "binary"}}
REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "description": "One image as multipart field `file`, several as `files`, or a raw image.",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": IMAGE_CONTENT["schema"],
                        "files": {"type": "array", "items": IMAGE_CONTENT["schema"]},
                    },
                    # A form without an image is refused: one of the two fields is required.
                    "anyOf": [{"required": ["file"]}, {"required": ["files"]}],
                }
            },
            "image/png": IMAGE_CONTENT,
            "image/jpeg": IMAGE_CONTENT,
            "image/*": IMAGE_CONTENT,
        },
    }
}
InvertQuery = Annotated[
    InvertMode,
    Query(description="auto inverts images whose border is light; true or false forces it."),
]


VersionQuery = Annotated[
    str | None,
    Query(
        description="A version of the model (GET /v2/models/mnist_mlp lists them); default: "
        "the repository's default version."
    ),
]


async def predict(
    request: Request, invert: InvertQuery = "auto", version: VersionQuery = None
) -> Response:
    """Decode each image to MNIST's 28x28 form and classify them all in one model call."""
    dataplane = dataplane_of(request.app)
    classifier = dataplane.model(None, version)  # 404 or 503 before the body is read
    with span("read request"):
        body = await whole_body(request.receive)
        content_type = header(request.scope, b"content-type")
        if len(body) <= SMALL_BODY_BYTES:
            uploads = uploads_from_body(content_type, body)
        else:  # a large form is split in a worker thread, never on the event loop
            uploads = await anyio.to_thread.run_sync(
                uploads_from_body, content_type, body, limiter=dataplane.heavy_work_limiter
            )
    # Written with orjson rather than through ``PredictResponse`` (which documents the body):
    # the card guarantees ten labelled outputs, and the bytes are the same as pydantic's.
    answer = await dataplane.predict(classifier, uploads, invert)
    with span("encode response"):
        return Response(orjson.dumps(answer), media_type=JSON)


def add_routes(router: APIRouter) -> None:
    """``POST /predict``, on the app's own router: a route of an included router is matched
    twice a request (once to select the router, once within it)."""
    router.add_api_route(
        "/predict",
        predict,
        methods=["POST"],
        route_class_override=DirectRoute,
        response_model=PredictResponse,
        response_model_exclude_none=True,
        openapi_extra=REQUEST_BODY,
        responses=error_responses(400, 404, 413, 415, 503),
        summary="Classify one or more digit images",
        tags=["predict"],
    )
