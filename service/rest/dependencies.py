"""The one way routes reach the application context: the app's ``DataPlane``.

``DataPlaneDep`` for FastAPI routes, ``dataplane_of(scope["app"])`` for the hot routes. The
provider is ``async def`` although it never awaits: FastAPI runs a plain ``def`` dependency in
its thread pool, and that hop costs more than decoding a 28x28 image.
"""

from typing import Annotated

from fastapi import Depends, Request
from starlette.types import ASGIApp

from service.inference.dataplane import DataPlane


def dataplane_of(app: ASGIApp) -> DataPlane:
    """The dataplane the app was built with (``create_rest_app`` puts it in ``app.state``)."""
    return app.state.dataplane


async def get_dataplane(request: Request) -> DataPlane:
    return dataplane_of(request.app)


DataPlaneDep = Annotated[DataPlane, Depends(get_dataplane)]


async def get_model_path(request: Request, model_name: str) -> tuple[str, str | None]:
    """The model name and, on the ``/versions/{model_version}`` routes, the version."""
    return model_name, request.path_params.get("model_version")


ModelPath = Annotated[tuple[str, str | None], Depends(get_model_path)]
