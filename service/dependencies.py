"""``Annotated`` dependency aliases, so routes declare what they need by type.

The providers are ``async def`` although they never await: FastAPI runs a plain ``def``
dependency in its thread pool, and that hop costs more than decoding a 28x28 image.
"""

from typing import Annotated

from fastapi import Depends, Request

from service.classifier import Classifier
from service.errors import NotReady
from service.metrics import Metrics
from service.settings import Settings


async def get_classifier(request: Request) -> Classifier:
    """The loaded model, or 503 while there is none (starting up or shutting down)."""
    classifier = request.app.state.classifier
    if classifier is None:
        raise NotReady("the model is not loaded yet; retry in a moment")
    return classifier


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


ClassifierDep = Annotated[Classifier, Depends(get_classifier)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
