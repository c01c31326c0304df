"""``POST /predict``: digit images in, digits and probabilities out."""

from typing import Annotated

import numpy as np
import orjson
from fastapi import APIRouter, Query, Request, Response

from service.classifier import Classifier
from service.dependencies import get_classifier, get_metrics, get_settings
from service.dynamic_batching import app_batcher
from service.errors import ServiceError
from service.preprocessing import ImageLimits, InvertMode, image_to_array
from service.request_work import run_request_work
from service.schemas import PredictResponse, error_responses
from service.settings import Settings
from service.uploads import Upload, read_uploads

router = APIRouter(tags=["predict"])

INLINE_DECODE_BYTES = 64 * 1024
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
    # Direct calls, not ``Depends``: solving three sub-dependencies cost ~30 µs of a ~450 µs
    # request (benchmarks/in_app.py, "dependencies as Depends").
    classifier = await get_classifier(request)
    settings, metrics = await get_settings(request), await get_metrics(request)
    uploads = await read_uploads(request, settings.max_images_per_request, settings.max_image_bytes)
    small = sum(len(upload.data) for upload in uploads) <= INLINE_DECODE_BYTES
    images = await run_request_work(
        request, _decode_all, uploads, invert, _limits(settings), inline=small
    )
    if settings.dynamic_batching:
        probabilities = await app_batcher(request.app, classifier).predict(images)
    else:
        probabilities = classifier.predict(images)
    predictions = _predictions(classifier, probabilities, uploads)
    metrics.observe_inference([str(prediction["digit"]) for prediction in predictions])
    card = classifier.card
    body = {"model": {"name": card.name, "version": card.version}, "predictions": predictions}
    # Written with orjson, bypassing FastAPI's second validation of ``PredictResponse`` (~25 µs
    # a request, benchmarks/in_app.py): the card guarantees ten labelled outputs, and the bytes
    # are the same as pydantic's. ``response_model`` still documents the body.
    return Response(orjson.dumps(body), media_type="application/json")


def _limits(settings: Settings) -> ImageLimits:
    return ImageLimits(max_pixels=settings.max_image_pixels, max_side=settings.max_image_side)


def _decode_all(uploads: list[Upload], invert: InvertMode, limits: ImageLimits) -> np.ndarray:
    arrays = []
    for position, upload in enumerate(uploads):
        try:
            arrays.append(image_to_array(upload.data, invert, limits))
        except ServiceError as error:
            if len(uploads) == 1 and upload.filename is None:
                raise
            name = upload.filename or f"image {position + 1}"
            raise type(error)(f"{name}: {error.message}", error.reason) from None
    return np.stack(arrays)


def _predictions(
    classifier: Classifier, probabilities: np.ndarray, uploads: list[Upload]
) -> list[dict[str, object]]:
    """``Prediction``'s fields as plain data, without the filename when none was sent."""
    labels = classifier.card.labels
    best = probabilities.argmax(axis=1).tolist()
    predictions: list[dict[str, object]] = []
    for row, index, upload in zip(probabilities.tolist(), best, uploads, strict=True):
        prediction = {"digit": int(labels[index]), "confidence": row[index], "probabilities": row}
        if upload.filename is not None:
            prediction["filename"] = upload.filename
        predictions.append(prediction)
    return predictions
