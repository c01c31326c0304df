"""The REST app factory: ``create_rest_app(settings)`` builds the dataplane, the routes and the
ASGI stack (``service.app.create_app`` is the served app: this, with gRPC in its lifespan)."""

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute

from service.inference import tracing
from service.inference.auth import ApiKeys
from service.inference.dataplane import SERVER_NAME, SERVER_VERSION, DataPlane
from service.inference.repository import ModelRepository, open_repository
from service.logs import count_drops
from service.rest.api_keys import ApiKeyGuard, document_api_keys
from service.rest.bodies import RequestBodies
from service.rest.connection import CONNECTION_POLICY, ConnectionPolicy, RefusalRecorder
from service.rest.errors import install_error_handlers
from service.rest.middleware import (
    RequestObserver,
    RouteTemplates,
    access_logger,
    refusal_recorder,
)
from service.rest.reload_signal import reload_on_sighup
from service.rest.routes import docs, metrics, page, predict, repository, triton, v2
from service.rest.safety import AllowedHosts
from service.settings import Settings

DESCRIPTION = (
    "Classifies handwritten digit images with an MLP trained on MNIST, served by onnxruntime. "
    "`POST /predict` takes images; the `/v2` routes speak the Open Inference Protocol."
)

# A server that lives as long as the app, on the app's dataplane (gRPC is one).
Companion = Callable[[DataPlane], AbstractAsyncContextManager[object]]


class App(FastAPI):
    """FastAPI whose OpenAPI document shows the API key when keys are set."""

    def openapi(self) -> dict[str, Any]:
        """FastAPI's document, plus the Bearer key on the guarded routes when keys are set."""
        if self.openapi_schema is None:
            schema = super().openapi()
            if self.state.dataplane.settings.all_api_keys:
                document_api_keys(schema)
        return self.openapi_schema


def create_rest_app(
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
        dataplane.serve_repository(models or open_repository(settings))
        async with AsyncExitStack() as stack:
            stack.enter_context(reload_on_sighup(dataplane))
            count_drops(access_logger, dataplane.metrics.access_log_dropped.inc)
            for companion in companions:
                await stack.enter_async_context(companion(dataplane))
            # Given to the server through the lifespan state: ReadTimeoutProtocol reads it.
            templates = app.state.route_templates
            recorder = refusal_recorder(templates, dataplane.metrics, settings.access_log)
            policy = connection_policy(settings, recorder)
            yield {CONNECTION_POLICY: policy}
        dataplane.stop_serving()

    app = App(
        title=SERVER_NAME,
        version=SERVER_VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        telemetry=tracing.fastapi_telemetry(dataplane.tracer_provider),
    )
    app.state.dataplane = dataplane
    install_error_handlers(app)
    # The hot routes first: the router tries routes in order. Triton's before V2's, so that
    # /v2/models/stats is not read as the metadata of a model named "stats".
    own_routes = list(app.router.routes)
    predict.add_routes(app.router)
    v2.add_infer_routes(app.router)
    _ahead_of(own_routes, app)
    routers = [triton.router, v2.router, page.router, metrics.router, docs.router]
    if dataplane.settings.model_control:
        routers.append(repository.router)
    for router in routers:
        app.include_router(router)
    paths = [route.path for route in app.router.routes if isinstance(route, APIRoute)]
    paths += [route.path for router in routers for route in router.routes]
    app.state.route_templates = RouteTemplates([app.openapi_url, *paths])
    add_service_middleware(app, dataplane)
    return app


def _ahead_of(own_routes: list[Any], app: FastAPI) -> None:
    """Move the routes added since ``own_routes`` (the hot routes) ahead of FastAPI's own
    (``/openapi.json``), which would otherwise be tried first on every request."""
    routes = app.router.routes
    routes[:] = [route for route in routes if route not in own_routes] + own_routes


def connection_policy(settings: Settings, recorder: RefusalRecorder) -> ConnectionPolicy:
    """What the server needs to know of the settings to bound each connection."""
    return ConnectionPolicy(
        read_timeout=settings.read_timeout,
        record_refusal=recorder,
        max_body_bytes=settings.max_request_bytes,
        max_header_bytes=settings.max_header_bytes,
        max_headers=settings.max_headers,
        linger_seconds=settings.linger_seconds,
        linger_timeout=settings.linger_timeout,
        linger_bytes=settings.max_request_bytes,
    )


def add_service_middleware(app: FastAPI, dataplane: DataPlane) -> None:
    """The service's middleware in the app's one stack, outermost first: request observation
    (metrics, access log), then when configured CORS, the Host check and the API-key check,
    the request bodies' bounds and their charge to the in-flight budget.
    Middleware a user adds later with ``app.add_middleware`` goes outside them all and sees
    every request, the hot routes' included."""
    settings = dataplane.settings
    app.add_middleware(
        RequestBodies, max_bytes=settings.max_request_bytes, budget=dataplane.inflight
    )
    if settings.all_api_keys:
        app.add_middleware(ApiKeyGuard, keys=ApiKeys(settings.all_api_keys))
    if settings.allowed_hosts:
        app.add_middleware(AllowedHosts, hosts=settings.allowed_hosts)
    if settings.cors_origins:  # outside the key check: preflights and 401s get CORS headers
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization"],
        )
    app.add_middleware(
        RequestObserver,
        metrics=dataplane.metrics,
        access_log=settings.access_log,
        templates=app.state.route_templates,
    )
