"""The app factory: ``create_app(settings)`` wires routes, errors and middleware."""

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

import anyio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from service.inference.classifier import Classifier
from service.inference.dataplane import SERVER_NAME, SERVER_VERSION, DataPlane
from service.inference.metrics import Metrics
from service.rest.errors import install_error_handlers
from service.rest.middleware import BodySizeLimit, RequestObserver
from service.rest.routes import docs, metrics, page, predict, v2
from service.settings import Settings

DESCRIPTION = (
    "Classifies handwritten digit images with an MLP trained on MNIST, served by onnxruntime. "
    "`POST /predict` takes images; the `/v2` routes speak the Open Inference Protocol."
)


# The served application's type, for modules that compose it without importing FastAPI.
App = FastAPI
# A server that lives as long as the app, on the app's dataplane (gRPC is one).
Companion = Callable[[DataPlane], AbstractAsyncContextManager[object]]


def create_app(
    settings: Settings | None = None,
    classifier: Classifier | None = None,
    companions: Sequence[Companion] = (),
) -> FastAPI:
    """Build the app; the model is loaded in the lifespan unless an already loaded one is given.

    Each companion is entered once the dataplane is built, and exited (in reverse order) after
    the HTTP requests in flight have finished.
    """
    settings = settings or Settings()
    app_metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.dataplane = DataPlane(
            settings=settings,
            metrics=app_metrics,
            classifier=classifier
            or Classifier.load(
                settings.model_path, settings.resolved_card_path, settings.intra_op_threads
            ),
            heavy_work_limiter=anyio.CapacityLimiter(settings.heavy_work_threads),
        )
        async with AsyncExitStack() as stack:
            for companion in companions:
                await stack.enter_async_context(companion(app.state.dataplane))
            yield
        app.state.dataplane = None

    app = FastAPI(
        title=SERVER_NAME,
        version=SERVER_VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = app_metrics
    app.state.dataplane = None
    install_error_handlers(app)
    for router in (predict.router, v2.router, page.router, metrics.router, docs.router):
        app.include_router(router)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"]
        )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestObserver, metrics=app_metrics, access_log=settings.access_log)
    return app
