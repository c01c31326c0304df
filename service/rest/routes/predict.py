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
from service.rest.raw import (
    JSON,
    RawResponse,
    RawRoute,
    header,
    others_in_progress,
    read_body,
)
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


async def predict(invert: InvertQuery = "auto", version: VersionQuery = None) -> PredictResponse:
    """Decode each image to MNIST's 28x28 form and classify them all in one model call."""
    raise NotImplementedError("served by answer_predict")


def query_parameters(query_string: bytes) -> dict[str, str]:
    """The query's parameters, the last value of each."""
    if not query_string:
        return {}
    return dict(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))


def invert_mode(parameters: dict[str, str]) -> InvertMode:
    """The ``invert`` query parameter, refused as FastAPI words it."""
    mode = parameters.get("invert", "auto")
    if mode not in INVERT_MODES:
        allowed = ", ".join(repr(choice) for choice in INVERT_MODES[:-1])
        raise BadRequest(
            f"invalid request: query.invert: Input should be {allowed} or {INVERT_MODES[-1]!r}",
            "invalid_request",
        )
    return mode


async def answer_predict(scope, receive) -> RawResponse:
    """The query, then the model (503 before the body is read), then the body and images."""
    parameters = query_parameters(scope["query_string"])
    invert, version = invert_mode(parameters), parameters.get("version")
    dataplane = dataplane_of(scope["app"])
    dataplane.model(None, version)
    body = await read_body(receive)
    uploads = uploads_from_body(header(scope, b"content-type"), body)
    # Written with orjson rather than through ``PredictResponse`` (which documents the body):
    # the card guarantees ten labelled outputs, and the bytes are the same as pydantic's.
    answer = await dataplane.predict(uploads, invert, version, others_in_progress(scope))
    return orjson.dumps(answer), JSON, None


ROUTES = [
    RawRoute(
        "/predict",
        predict,
        answer_predict,
        response_model=PredictResponse,
        response_model_exclude_none=True,
        openapi_extra=REQUEST_BODY,
        responses=error_responses(400, 404, 413, 415, 503),
        summary="Classify one or more digit images",
        tags=["predict"],
    )
]
