"""Reading an ASGI request where Starlette's ``Request`` would cost more than the reading: the
scope in the pure-ASGI middleware, which runs before any ``Request`` exists, and the body of
the hot routes."""

from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope


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
