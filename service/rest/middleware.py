"""Pure ASGI middleware (no per-request task hop): request observation (metrics, access log)."""

import logging
import time
from collections.abc import Iterable

from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.inference.metrics import Metrics
from service.logs import log_access
from service.rest.asgi import HttpMiddleware
from service.rest.connection import RefusalRecorder

access_logger = logging.getLogger("service.access")


class RouteTemplates:
    """The route template a path belongs to, for requests that no route handled: refused before
    routing (401, 408, 499), a method the route does not take (405), or a plain Starlette route
    (``/openapi.json``). Only those pay for the regular expressions; "unmatched" is a 404."""

    def __init__(self, templates: Iterable[str]) -> None:
        self._patterns = [(compile_path(template)[0], template) for template in templates]

    def template(self, path: str) -> str:
        for pattern, template in self._patterns:
            if pattern.match(path):
                return template
        return "unmatched"


class RequestObserver(HttpMiddleware):
    """Count, time and log every request under its route template (not its raw path)."""

    def __init__(
        self, app: ASGIApp, metrics: Metrics, access_log: bool, templates: RouteTemplates
    ) -> None:
        super().__init__(app)
        self.metrics = metrics
        self.access_log = access_log
        self.templates = templates

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500

        async def observing_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observing_send)
        finally:
            self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        template = route.path if route is not None else self.templates.template(scope["path"])
        observe_request(self.metrics, self.access_log, template, scope, status, seconds)


def observe_request(
    metrics: Metrics,
    access_log: bool,
    template: str,
    scope: Scope | None,
    status: int,
    seconds: float,
) -> None:
    """One request's count, latency and access line (``-`` for what a lost request never sent)."""
    method, path = ("-", "-") if scope is None else (scope["method"], scope["path"])
    metrics.observe_request(template, method, status, seconds)
    if access_log:
        log_access(access_logger, "%s %s %d %.2fms", method, path, status, seconds * 1000.0)


def refusal_recorder(
    templates: RouteTemplates, metrics: Metrics, access_log: bool
) -> RefusalRecorder:
    """Count and log, as ``RequestObserver`` would, a request the server refused or lost before
    the app had it (``ConnectionPolicy.record_refusal``), under the route it was for."""

    def record(scope: Scope | None, status: int, reason: str, seconds: float) -> None:
        template = "unmatched" if scope is None else templates.template(scope["path"])
        observe_request(metrics, access_log, template, scope, status, seconds)
        metrics.rejected_inputs.labels(reason).inc()

    return record
