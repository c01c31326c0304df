"""Pure ASGI middleware (no per-request task hop): the body size limit and request observation."""

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.inference.errors import PayloadTooLarge
from service.inference.metrics import Metrics
from service.rest.errors import count_rejection, error_body

access_logger = logging.getLogger("service.access")


class BodySizeLimit:
    """Refuse a body over ``max_bytes`` from its Content-Length, or while it is being read."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, send, f"the request body is {declared} bytes")
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise PayloadTooLarge(self._message("the request body exceeds"), "body_too_large")
            return message

        await self.app(scope, limited_receive, send)

    def _message(self, what: str) -> str:
        return f"{what}; at most {self.max_bytes} bytes are allowed"

    async def _refuse(self, scope: Scope, send: Send, what: str) -> None:
        count_rejection(scope["app"], "body_too_large")
        body = error_body(self._message(what))
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class RequestObserver:
    """Count, time and log every request under its route template (not its raw path)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, access_log: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
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
        template = getattr(route, "path", None) or "unmatched"
        self.metrics.observe_request(template, scope["method"], status, seconds)
        if self.access_log:
            access_logger.info(
                "%s %s %d %.2fms", scope["method"], scope["path"], status, seconds * 1000.0
            )
