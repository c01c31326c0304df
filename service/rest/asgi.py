"""Pure ASGI for where Starlette's ``Request`` would cost more than the work: the base of the
service's own middleware, the scope read there (before any ``Request`` exists), and the body of
the hot routes."""

from abc import ABC, abstractmethod
from collections.abc import Awaitable

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send


class HttpMiddleware(ABC):
    """A pure ASGI middleware (no per-request task, unlike ``BaseHTTPMiddleware``) that handles
    HTTP requests in ``handle``; every other scope (lifespan, websocket) goes straight on.

    ``__call__`` returns the coroutine it picks rather than awaiting it: a request runs in
    ``handle`` with no frame of this class's around it. The service's middlewares sit inside
    FastAPI; as the outermost app one would need uvicorn's ``interface="asgi3"`` (uvicorn
    tells ASGI 3 by a coroutine ``__call__``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] == "http":
            return self.handle(scope, receive, send)
        return self.app(scope, receive, send)

    @abstractmethod
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One HTTP request: answer it, or pass it on to ``self.app``."""


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of a (lower-case) request header, or None."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def route_path(scope: Scope) -> str:
    """The path the routes see: without the root path a proxy mounted the app under (ASGI's
    ``root_path``; Starlette has no public helper for it)."""
    path, root = scope["path"], scope.get("root_path")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :] or "/"
    return path


async def whole_body(receive: Receive) -> bytes:
    """The request body, as ``Request.body()`` reads it (``ClientDisconnect`` if the client goes
    away first), without its async generator and per-chunk bookkeeping: for an endpoint that
    reads its body once and alone."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
