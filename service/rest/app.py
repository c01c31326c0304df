"""The app factory: ``create_app(settings)`` builds the dataplane, the routes and the ASGI stack."""

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from service.inference.auth import ApiKeys
from service.inference.dataplane import SERVER_NAME, SERVER_VERSION, DataPlane
from service.inference.repository import ModelRepository, open_repository
from service.rest.api_keys import ApiKeyGuard, document_api_keys
from service.rest.errors import install_error_handlers
from service.rest.middleware import (
    RequestBodyGuard,
    RequestObserver,
    RouteTemplates,
    refusal_recorder,
)
from service.rest.protocol import CONNECTION_POLICY, ConnectionPolicy
from service.rest.raw import HotRoutes, RawRoute
from service.rest.reload_signal import reload_on_sighup
from service.rest.routes import docs, metrics, page, predict, repository, triton, v2
from service.settings import Settings

DESCRIPTION = (
    "Classifies handwritten digit images with an MLP trained on MNIST, served by onnxruntime. "
    "`POST /predict` takes images; the `/v2` routes speak the Open Inference Protocol."
)
HOT_ROUTES: list[RawRoute] = [*predict.ROUTES, *v2.ROUTES]
# The service's metrics are Prometheus (/metrics): FastAPI's OpenTelemetry hooks stay off, so
# that no request pays for asking whether an OpenTelemetry provider is configured.
TELEMETRY_OFF = {"tracing": False, "metrics": False, "logs": False}

# A server that lives as long as the app, on the app's dataplane (gRPC is one).
Companion = Callable[[DataPlane], AbstractAsyncContextManager[object]]


class App(FastAPI):
    """FastAPI with the service's ASGI stack around it, outermost first: request observation
    (metrics, access log), CORS and the API-key check when configured, the request body guard,
    then the hot routes, which answer their POSTs before FastAPI's own middleware and router
    are entered."""

    def build_middleware_stack(self) -> ASGIApp:
        settings = self.state.dataplane.settings
        app: ASGIApp = HotRoutes(super().build_middleware_stack(), HOT_ROUTES)
        app = RequestBodyGuard(app, max_bytes=settings.max_request_bytes)
        if settings.all_api_keys:
            app = ApiKeyGuard(app, ApiKeys(settings.all_api_keys))
        if settings.cors_origins:  # outside the key check: preflights and 401s get CORS headers
            origins, methods = settings.cors_origins, ["GET", "POST"]
            app = CORSMiddleware(
                app, allow_origins=origins, allow_methods=methods, allow_headers=["Authorization"]
            )
        metrics, templates = self.state.dataplane.metrics, self.state.route_templates
        return RequestObserver(app, metrics, settings.access_log, templates)

    def openapi(self) -> dict[str, Any]:
        """FastAPI's document, plus the Bearer key on the guarded routes when keys are set."""
        if self.openapi_schema is None:
            schema = super().openapi()
            if self.state.dataplane.settings.all_api_keys:
                document_api_keys(schema)
        return self.openapi_schema


def create_app(
    settings: Settings | None = None,
    models: ModelRepository | None = None,
    companions: Sequence[Companion] = (),
) -> App:
    """Build the app; the models are loaded in the lifespan unless already loaded ones are given.

    Each companion is entered once the model is loaded, and exited (in reverse order) after
    the HTTP requests in flight have finished.
    """
    dataplane = DataPlane(settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, object]]:
        settings = dataplane.settings
        dataplane.load(models or open_repository(settings))
        async with AsyncExitStack() as stack:
            stack.enter_context(reload_on_sighup(dataplane))
            for companion in companions:
                await stack.enter_async_context(companion(dataplane))
            # Given to the server through the lifespan state: ReadTimeoutProtocol reads it.
            templates = app.state.route_templates
            recorder = refusal_recorder(templates, dataplane.metrics, settings.access_log)
            yield {CONNECTION_POLICY: ConnectionPolicy(settings.read_timeout, recorder)}
        dataplane.unload()

    app = App(
        title=SERVER_NAME,
        version=SERVER_VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        telemetry=TELEMETRY_OFF,
    )
    app.state.dataplane = dataplane
    install_error_handlers(app)
    app.router.routes.extend(HOT_ROUTES)
    # Triton's routes first: /v2/models/stats before V2's /v2/models/{model_name}.
    routers = [triton.router, v2.router, page.router, metrics.router, docs.router]
    if dataplane.settings.model_control:
        routers.append(repository.router)
    for router in routers:
        app.include_router(router)
    paths = [route.path for router in routers for route in router.routes]
    app.state.route_templates = RouteTemplates(
        [app.openapi_url, *(route.path for route in HOT_ROUTES), *paths]
    )
    return app
