"""Triton's model repository extension over HTTP: index, load, unload.

Management routes: mounted only with ``MNIST_MODEL_CONTROL=true`` (the default), and guarded
like inference when API keys are on. A load reads and warms sessions, which takes a fraction of
a second per version: it runs in a worker thread, so requests keep being served meanwhile.
"""

from typing import Annotated

import anyio
import orjson
from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from service.inference.errors import BadRequest, UnsupportedMediaType
from service.inference.model_control import (
    load_model,
    repository_index,
    unload_model,
)
from service.rest.dependencies import DataPlaneDep
from service.rest.openapi import error_responses

router = APIRouter(prefix="/v2/repository", tags=["repository"])


class IndexRequest(BaseModel):
    """Triton's index request: all versions, or only those ready for inference."""

    model_config = ConfigDict(extra="forbid")

    ready: bool = Field(
        False, strict=True, description="List only the versions that serve requests."
    )


class IndexEntryBody(BaseModel):
    """One model version in the repository."""

    name: str
    version: str
    state: str = Field(description="READY (serving) or UNAVAILABLE.")
    reason: str = Field(description="Why it is unavailable: unloaded, or on disk, not loaded.")


class ModelLoaded(BaseModel):
    """What a load put in service."""

    name: str
    versions: list[str] = Field(description="Every version now served, in file order.")
    default_version: str = Field(description="The version that unversioned requests get.")


class ModelUnloaded(BaseModel):
    """A model out of service until the next load."""

    name: str
    state: str = "UNAVAILABLE"


JSON_MEDIA_TYPE = "application/json"


async def optional_json_object(request: Request) -> dict[str, object] | None:
    """Triton's load/unload body: "The HTTP body may be empty or may contain the load request
    object". tritonclient sends its JSON without a Content-Type, so none is read as JSON too;
    any other Content-Type is refused (415): a browser's cross-site form cannot send either."""
    content_type = request.headers.get("content-type")
    media_type = content_type.split(";", 1)[0].strip().lower() if content_type else None
    if media_type not in (None, JSON_MEDIA_TYPE):
        raise UnsupportedMediaType(
            f"content type {media_type!r} is not accepted: send {JSON_MEDIA_TYPE} or no body",
            "unsupported_content_type",
        )
    body = await request.body()
    if not body.strip():
        return None
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"the body is not valid JSON: {error}", "bad_json") from None
    if not isinstance(document, dict):
        raise BadRequest('the body must be a JSON object, like {"parameters": {}}', "bad_json")
    return document


OptionalBody = Annotated[dict[str, object] | None, Depends(optional_json_object)]
# Read by ``optional_json_object`` rather than declared as a Body, so it is documented here.
OPTIONAL_BODY_OPENAPI = {
    "requestBody": {
        "required": False,
        "description": "Triton's optional load request object (its `parameters` are not needed "
        "here): JSON, with Content-Type application/json or none; or no body.",
        "content": {JSON_MEDIA_TYPE: {"schema": {"type": "object"}}},
    }
}


@router.post("/index", summary="Repository index", responses=error_responses(400, 503))
async def index(
    dataplane: DataPlaneDep, request: Annotated[IndexRequest | None, Body()] = None
) -> list[IndexEntryBody]:
    """Every model version: loaded (READY), unloaded, or on disk but not loaded (UNAVAILABLE)."""
    ready_only = request.ready if request is not None else False
    entries = await anyio.to_thread.run_sync(repository_index, dataplane, ready_only)
    return [IndexEntryBody(**vars(entry)) for entry in entries]


@router.post(
    "/models/{model_name}/load",
    summary="Load a model",
    responses=error_responses(400, 404, 409, 415, 503),
    openapi_extra=OPTIONAL_BODY_OPENAPI,
)
async def load(dataplane: DataPlaneDep, model_name: str, body: OptionalBody = None) -> ModelLoaded:
    """Re-read every version of the model from disk, check each card, checksum and signature,
    warm them up and swap them in at once; requests in flight finish on the old ones. A load
    that fails changes nothing, and its error names the file and the problem."""
    result = await anyio.to_thread.run_sync(load_model, dataplane, model_name)
    return ModelLoaded(**vars(result))


@router.post(
    "/models/{model_name}/unload",
    summary="Unload a model",
    responses=error_responses(400, 404, 409, 415, 503),
    openapi_extra=OPTIONAL_BODY_OPENAPI,
)
async def unload(
    dataplane: DataPlaneDep, model_name: str, body: OptionalBody = None
) -> ModelUnloaded:
    """Take the model out of service: its routes answer 503 until it is loaded again."""
    await anyio.to_thread.run_sync(unload_model, dataplane, model_name)
    return ModelUnloaded(name=model_name)
