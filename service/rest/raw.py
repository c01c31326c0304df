"""The lean ASGI layer: the hot routes served without FastAPI's per-request machinery.

A ``RawRoute`` is an ``APIRoute`` (so the OpenAPI document and /docs describe it from its
declared signature, response model and ``openapi_extra``) whose requests are served by a raw
ASGI handler instead of FastAPI's request/response cycle. ``HotRoutes`` sits in front of
FastAPI's own stack and sends POSTs that a raw route matches straight to that handler: no
middleware layers, no router walk over every route, no ``Request`` or dependency solving.
Whatever no raw route matches goes on to FastAPI unchanged.
"""

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi.routing import APIRoute
from starlette._utils import get_route_path
from starlette.convertors import StringConvertor
from starlette.types import ASGIApp, Receive, Scope, Send

from service.inference.errors import ServiceError
from service.rest.errors import (
    UNEXPECTED_ERROR_MESSAGE,
    count_rejection,
    error_body,
    header_pairs,
)
from service.rest.protocol import CONNECTION

logger = logging.getLogger("service.errors")

RawHandler = Callable[[Scope, Receive, Send], Awaitable[None]]
# A hot route's answer: the body of its 200, its content type and any further headers.
RawResponse = tuple[bytes, bytes, list[tuple[bytes, bytes]] | None]
Answer = Callable[[Scope, Receive], Awaitable[RawResponse]]
JSON = b"application/json"


class RawRoute(APIRoute):
    """An operation documented by ``declaration``'s signature and served by ``handler``.

    ``declaration`` is what FastAPI reads for the OpenAPI entry (parameters, docstring, return
    type); the route never calls it. ``answer`` computes the 200 from the ASGI scope and body.
    """

    def __init__(self, path: str, declaration: Callable[..., Any], answer: Answer, **options):
        super().__init__(path, declaration, methods=["POST"], **options)
        if not all(isinstance(each, StringConvertor) for each in self.param_convertors.values()):
            raise ValueError(f"{path}: a raw route's path parameters are plain strings")
        self.app = serve(answer)


class HotRoutes:
    """Serve POSTs matched by a raw route directly; pass everything else to ``app``.

    Matching is Starlette's (the route's own path regex, so exactly the requests FastAPI's
    router would give the route), without the router's walk over every other route.
    """

    def __init__(self, app: ASGIApp, routes: Iterable[RawRoute]) -> None:
        self.app = app
        self.routes = tuple(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = route_path(scope)
            for route in self.routes:
                match = route.path_regex.match(path)
                if match is not None:
                    scope["route"] = route
                    scope["path_params"] = match.groupdict()
                    await route.app(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def route_path(scope: Scope) -> str:
    """The path the routes see (without the root path a proxy mounted the app under)."""
    return get_route_path(scope) if scope.get("root_path") else scope["path"]


def others_in_progress(scope: Scope) -> bool:
    """Whether the server has other requests in hand; True when it cannot say (a server
    other than ``python -m service``'s), so that batching still finds company."""
    extensions = scope.get("extensions")
    connection = extensions.get(CONNECTION) if extensions else None
    return connection is None or connection.others_in_progress()


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of a (lower-case) request header, or None."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def read_body(receive: Receive) -> bytes:
    """The whole request body (the size limit applies in ``receive`` itself)."""
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body", False):
        return body
    chunks = [body]
    while message.get("more_body", False):
        message = await receive()
        chunks.append(message.get("body", b""))
    return b"".join(chunks)


async def send_body(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = JSON,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """A complete response in two ASGI messages, as uvicorn writes it."""
    response_headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    if headers:
        response_headers += headers
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    await send({"type": "http.response.body", "body": body})


def serve(answer: Answer) -> RawHandler:
    """An ASGI handler that sends what ``answer`` returns, and renders what it raises as
    FastAPI's error handlers do: the same status, body and rejected-inputs count for a
    ``ServiceError``, a logged 500 for anything else."""

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            response = await answer(scope, receive)
        except ServiceError as error:
            count_rejection(scope["app"], error.reason)
            body = error_body(error.message)
            await send_body(send, error.status_code, body, headers=header_pairs(error))
        except Exception:
            logger.exception("unhandled error on %s %s", scope["method"], scope["path"])
            await send_body(send, 500, error_body(UNEXPECTED_ERROR_MESSAGE))
        else:
            await send_body(send, 200, *response)

    return handler
