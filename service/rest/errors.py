"""The one place errors become HTTP responses: ``{"error": message}`` with the error's status."""

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.inference.errors import ServiceError, invalid_request

logger = logging.getLogger("service.errors")


def error_response(
    status_code: int, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The single error body shape of the service: ``{"error": message}``."""
    return JSONResponse({"error": message}, status_code=status_code, headers=headers)


def _count_rejection(request: Request, reason: str) -> None:
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.rejected_inputs.labels(reason).inc()


def render_service_error(request: Request, error: ServiceError) -> JSONResponse:
    """Count the refusal under its reason and answer with its status and message."""
    _count_rejection(request, error.reason)
    return error_response(error.status_code, error.message)


async def _render_service_error(request: Request, error: Exception) -> JSONResponse:
    if not isinstance(error, ServiceError):
        raise TypeError(f"unexpected error type {type(error).__name__}")
    return render_service_error(request, error)


async def _render_http_error(request: Request, error: Exception) -> JSONResponse:
    if not isinstance(error, StarletteHTTPException):
        raise TypeError(f"unexpected error type {type(error).__name__}")
    message = error.detail if isinstance(error.detail, str) else "request refused"
    if error.status_code == 404:
        message = f"no route {request.url.path}; see /docs for the API"
    elif error.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    # Keeps the headers the error carries, such as the ``Allow`` that RFC 9110 requires on a 405.
    return error_response(error.status_code, message, error.headers)


async def _render_validation_error(request: Request, error: Exception) -> JSONResponse:
    if not isinstance(error, RequestValidationError):
        raise TypeError(f"unexpected error type {type(error).__name__}")
    return render_service_error(request, invalid_request(error))


async def _render_unexpected_error(request: Request, error: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal error; the request was not processed")


def install_error_handlers(app: FastAPI) -> None:
    """Render every error as ``{"error": ...}``: ours, FastAPI's and, last, anything unexpected."""
    app.add_exception_handler(ServiceError, _render_service_error)
    app.add_exception_handler(StarletteHTTPException, _render_http_error)
    app.add_exception_handler(RequestValidationError, _render_validation_error)
    app.add_exception_handler(Exception, _render_unexpected_error)
