"""The one place errors become HTTP responses: ``{"error": message}`` with the error's status.

FastAPI's exception handlers render what the routes raise; the middleware that refuses a
request before routing (the API-key check, the request-body bounds) sends ``refusal`` the same
way; the server's own 408 (``service.rest.uvicorn_hooks``) writes ``error_body``. A refusal
reads and counts the same wherever it is made.
"""

import json
import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from service.inference.errors import ServiceError, invalid_request

logger = logging.getLogger("service.errors")

UNEXPECTED_ERROR_MESSAGE = "internal error; the request was not processed"


class RequestTimeout(
    ServiceError, status_code=408, reason="read_timeout", headers={"Connection": "close"}
):
    """The client stopped sending its request for longer than the read timeout. The rest of
    the stalled request may still arrive: only a new connection starts cleanly."""


class ClientClosedRequest(ServiceError, status_code=499, reason="client_closed_request"):
    """The client went away before its request was read: nginx's 499, not an error of ours."""


def body_stalled_message(received: int) -> str:
    return (
        f"the request body stalled for longer than the read timeout after {received} bytes; "
        "send the whole body without pausing"
    )


def error_body(message: str) -> bytes:
    """The single error body shape of the service, as compact UTF-8 JSON."""
    return json.dumps({"error": message}, ensure_ascii=False, separators=(",", ":")).encode()


def error_response(
    status_code: int, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        error_body(message), status_code=status_code, headers=headers, media_type="application/json"
    )


def count_rejection(app: ASGIApp, reason: str) -> None:
    """Count a refused request under its reason in the rejected-inputs metric."""
    app.state.dataplane.metrics.rejected_inputs.labels(reason).inc()


def render_service_error(request: Request, error: ServiceError) -> Response:
    """Count the refusal under its reason and answer with its status and message."""
    count_rejection(request.app, error.reason)
    return error_response(error.status_code, error.message, error.headers or None)


async def refusal(scope: Scope, receive: Receive, send: Send, error: ServiceError) -> None:
    """Send ``error`` from pure ASGI middleware, counted and rendered as the handlers do."""
    count_rejection(scope["app"], error.reason)
    response = error_response(error.status_code, error.message, error.headers or None)
    await response(scope, receive, send)


async def _render_service_error(request: Request, error: Exception) -> Response:
    if not isinstance(error, ServiceError):
        raise TypeError(f"unexpected error type {type(error).__name__}")
    return render_service_error(request, error)


async def _render_http_error(request: Request, error: Exception) -> Response:
    if not isinstance(error, StarletteHTTPException):
        raise TypeError(f"unexpected error type {type(error).__name__}")
    message = error.detail if isinstance(error.detail, str) else "request refused"
    if error.status_code == 404:
        message = f"no route {request.url.path}; see /docs for the API"
    elif error.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    # Keeps the headers the error carries, such as the ``Allow`` that RFC 9110 requires on a 405.
    return error_response(error.status_code, message, error.headers)


async def _render_validation_error(request: Request, error: Exception) -> Response:
    if not isinstance(error, RequestValidationError):
        raise TypeError(f"unexpected error type {type(error).__name__}")
    return render_service_error(request, invalid_request(error))


async def _render_unexpected_error(request: Request, error: Exception) -> Response:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, UNEXPECTED_ERROR_MESSAGE)


def install_error_handlers(app: FastAPI) -> None:
    """Render every error as ``{"error": ...}``: ours, FastAPI's and, last, anything unexpected."""
    app.add_exception_handler(ServiceError, _render_service_error)
    app.add_exception_handler(StarletteHTTPException, _render_http_error)
    app.add_exception_handler(RequestValidationError, _render_validation_error)
    app.add_exception_handler(Exception, _render_unexpected_error)
