"""``POST /predict``: digit images in, digits and probabilities out."""

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request, Response

from service.inference.preprocessing import InvertMode
from service.inference.schemas import PredictResponse
from service.rest.dependencies import dataplane_of
from service.rest.openapi import error_responses
from service.rest.uploads import read_uploads

router = APIRouter(tags=["predict"])

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


@router.post(
    "/predict",
    response_model=PredictResponse,
    response_model_exclude_none=True,
    openapi_extra=REQUEST_BODY,
    responses=error_responses(400, 413, 415, 503),
    summary="Classify one or more digit images",
)
async def predict(request: Request, invert: InvertQuery = "auto") -> Response:
    """Decode each image to MNIST's 28x28 form and classify them all in one model call."""
    # A direct call, not ``Depends``: solving sub-dependencies cost ~30 µs of a ~450 µs
    # request (benchmarks/in_app.py, "dependencies as Depends").
    dataplane = dataplane_of(request)
    uploads = await read_uploads(request)
    body = await dataplane.predict(uploads, invert)
    # Written with orjson, bypassing FastAPI's second validation of ``PredictResponse`` (~25 µs
    # a request, benchmarks/in_app.py): the card guarantees ten labelled outputs, and the bytes
    # are the same as pydantic's. ``response_model`` still documents the body.
    return Response(orjson.dumps(body), media_type="application/json")
