"""Reading an ASGI scope in the pure-ASGI middleware, which runs before any ``Request`` exists."""

from starlette.types import Scope


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
