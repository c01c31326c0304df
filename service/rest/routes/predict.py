"""``POST /predict``: digit images in, digits and probabilities out; a hot route."""

from typing import Annotated, get_args
from urllib.parse import parse_qsl

import orjson
from fastapi import Query

from service.inference.errors import BadRequest
from service.inference.preprocessing import InvertMode
from service.inference.schemas import PredictResponse
from service.rest.dependencies import dataplane_of
from service.rest.openapi import error_responses
from service.rest.raw import JSON, RawResponse, RawRoute, header, read_body
from service.rest.uploads import uploads_from_body

INVERT_MODES: tuple[str, ...] = get_args(InvertMode)
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


async def predict(invert: InvertQuery = "auto") -> PredictResponse:
    """Decode each image to MNIST's 28x28 form and classify them all in one model call."""
    raise NotImplementedError("served by answer_predict")


def invert_mode(query_string: bytes) -> InvertMode:
    """The ``invert`` query parameter (the last one given), refused as FastAPI words it."""
    mode = "auto"
    if query_string:
        for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
            if name == "invert":
                mode = value
    if mode not in INVERT_MODES:
        allowed = ", ".join(repr(choice) for choice in INVERT_MODES[:-1])
        raise BadRequest(
            f"invalid request: query.invert: Input should be {allowed} or {INVERT_MODES[-1]!r}",
            "invalid_request",
        )
    return mode


async def answer_predict(scope, receive) -> RawResponse:
    """The query, then the model (503 before the body is read), then the body and images."""
    invert = invert_mode(scope["query_string"])
    dataplane = dataplane_of(scope["app"])
    dataplane.model()
    body = await read_body(receive)
    uploads = uploads_from_body(header(scope, b"content-type"), body)
    # Written with orjson rather than through ``PredictResponse`` (which documents the body):
    # the card guarantees ten labelled outputs, and the bytes are the same as pydantic's.
    return orjson.dumps(await dataplane.predict(uploads, invert)), JSON, None


ROUTES = [
    RawRoute(
        "/predict",
        predict,
        answer_predict,
        response_model=PredictResponse,
        response_model_exclude_none=True,
        openapi_extra=REQUEST_BODY,
        responses=error_responses(400, 413, 415, 503),
        summary="Classify one or more digit images",
        tags=["predict"],
    )
]
