"""``Annotated`` dependency aliases, so routes declare what they need by type.

The providers are ``async def`` although they never await: FastAPI runs a plain ``def``
dependency in its thread pool, and that hop costs more than decoding a 28x28 image.
"""

from typing import Annotated

from fastapi import Depends, Request

from service.inference.dataplane import DataPlane
from service.inference.errors import NotReady
from service.inference.metrics import Metrics


def dataplane_of(request: Request) -> DataPlane:
    """The app's dataplane, or 503 while there is none (starting up or shutting down)."""
    dataplane = request.app.state.dataplane
    if dataplane is None:
        raise NotReady("the model is not loaded yet; retry in a moment")
    return dataplane


async def get_dataplane(request: Request) -> DataPlane:
    return dataplane_of(request)


DataPlaneDep = Annotated[DataPlane, Depends(get_dataplane)]


async def get_metrics(request: Request) -> Metrics:
    """The app's metrics exist before the model loads, so that ``/metrics`` always answers."""
    return request.app.state.metrics


MetricsDep = Annotated[Metrics, Depends(get_metrics)]
