"""Triton's model configuration and statistics extensions over HTTP.

Answers are Triton's JSON forms, built by the core (``model_config``, ``statistics``).
``/v2/models/stats`` is declared here, and this router is included before the V2 routes, so
that it is never read as the metadata of a model named "stats".
"""

from typing import Any

from fastapi import APIRouter

from service.rest.dependencies import DataPlaneDep, ModelPath
from service.rest.routes.v2 import model_routes

router = APIRouter(prefix="/v2", tags=["v2"])


@router.get("/models/stats", summary="Statistics of every model")
async def every_model_statistics(dataplane: DataPlaneDep) -> dict[str, Any]:
    """Triton's statistics of every version of every model served (``model_stats``)."""
    return dataplane.model_statistics()


@model_routes(router, "/stats", "Model statistics")
async def model_statistics(dataplane: DataPlaneDep, model: ModelPath) -> dict[str, Any]:
    """Per version: requests (count, images, success, fail, queue and compute times in ns),
    model calls (count, and per batch size their compute times), the last inference (ms since
    the epoch). This process's counts: each worker of several answers for itself."""
    return dataplane.model_statistics(*model)


@model_routes(router, "/config", "Model configuration")
async def model_config(dataplane: DataPlaneDep, model: ModelPath) -> dict[str, Any]:
    """Triton's ``ModelConfig`` of the version (default: the model's default version): platform,
    ``max_batch_size`` (the most images a request may carry), inputs and outputs with ``dims``
    without the batch dimension, ``dynamic_batching`` when on, the version policy."""
    return dataplane.model_config(*model)
