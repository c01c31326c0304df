"""Triton's model repository extension over HTTP: index, load, unload.

Management routes: mounted only with ``MNIST_MODEL_CONTROL=true`` (off by default), guarded like
inference when API keys are on, and never driven by a web page through a browser
(``service.rest.safety``). A load reads and warms sessions, which takes a fraction of
a second per version: it runs in a worker thread, so requests keep being served meanwhile.
"""

from typing import Annotated

import anyio
from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, ConfigDict, Field

from service.inference.model_control import (
    load_model,
    repository_index,
    unload_model,
)
from service.rest.dependencies import DataPlaneDep
from service.rest.openapi import error_responses
from service.rest.safety import refuse_cross_site

# tritonclient sends its JSON with no Content-Type, which FastAPI's strict default would leave
# unparsed; refuse_cross_site refuses what a browser could send that way (it carries an Origin).
router = APIRouter(
    prefix="/v2/repository",
    tags=["repository"],
    dependencies=[Depends(refuse_cross_site)],
    strict_content_type=False,
)


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
    versions: list[str] = Field(description="Every version now served, lowest first.")
    default_version: str = Field(description="The version that unversioned requests get.")


class ModelUnloaded(BaseModel):
    """A model out of service until the next load."""

    name: str
    state: str = "UNAVAILABLE"


OptionalBody = Annotated[
    dict[str, object] | None,
    Body(description="Triton's optional `parameters`; none are needed here."),
]


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
    responses=error_responses(400, 404, 409, 503),
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
    responses=error_responses(400, 404, 409, 503),
)
async def unload(
    dataplane: DataPlaneDep, model_name: str, body: OptionalBody = None
) -> ModelUnloaded:
    """Take the model out of service: its routes answer 503 until it is loaded again."""
    await anyio.to_thread.run_sync(unload_model, dataplane, model_name)
    return ModelUnloaded(name=model_name)
