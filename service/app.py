"""The app factory: ``create_app(settings)`` wires routers, errors and middleware."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from service.classifier import Classifier
from service.errors import install_error_handlers
from service.metrics import Metrics
from service.middleware import BodySizeLimit, RequestObserver
from service.routers import docs, metrics, page, predict, v2
from service.settings import Settings

DESCRIPTION = (
    "Classifies handwritten digit images with an MLP trained on MNIST, served by onnxruntime. "
    "`POST /predict` takes images; the `/v2` routes speak the Open Inference Protocol."
)


def create_app(settings: Settings | None = None, classifier: Classifier | None = None) -> FastAPI:
    """Build the app; the model is loaded in the lifespan unless an already loaded one is given."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.heavy_work_limiter = anyio.CapacityLimiter(settings.heavy_work_threads)
        app.state.classifier = classifier or Classifier.load(
            settings.model_path, settings.resolved_card_path, settings.intra_op_threads
        )
        yield
        app.state.classifier = None

    app = FastAPI(
        title="mnist-mlp",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.classifier = None
    install_error_handlers(app)
    for router in (predict.router, v2.router, page.router, metrics.router, docs.router):
        app.include_router(router)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"]
        )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestObserver, metrics=app.state.metrics, access_log=settings.access_log)
    return app
