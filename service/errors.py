"""Errors that carry their HTTP status, and the one handler that renders them as JSON."""

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger("service.errors")


class ServiceError(Exception):
    """A request the service refuses; ``reason`` labels it in the rejected-inputs metric."""

    status_code = 400
    reason = "bad_request"

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason


class BadRequest(ServiceError):
    """Malformed request: missing file, broken multipart, bad tensor JSON."""

    status_code = 400
    reason = "bad_request"


class NotFound(ServiceError):
    """Unknown model or model version."""

    status_code = 404
    reason = "not_found"


class PayloadTooLarge(ServiceError):
    """Too many bytes, pixels or images."""

    status_code = 413
    reason = "too_large"


class UnsupportedMediaType(ServiceError):
    """Not an image, or a content type the route does not take."""

    status_code = 415
    reason = "unsupported_media_type"


class NotReady(ServiceError):
    """The model is not loaded (yet, or any more)."""

    status_code = 503
    reason = "not_ready"


def error_response(
    status_code: int, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The single error body shape of the service: ``{"error": message}``."""
    return JSONResponse({"error": message}, status_code=status_code, headers=headers)


def describe_validation_errors(error: ValidationError | RequestValidationError) -> str:
    """What pydantic refused, in one line: ``field.path: message; ...``."""
    return "; ".join(
        f"{'.'.join(str(part) for part in detail['loc'])}: {detail['msg']}"
        for detail in error.errors()
    )


def _count_rejection(request: Request, reason: str) -> None:
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.rejected_inputs.labels(reason).inc()


async def _render_service_error(request: Request, error: Exception) -> JSONResponse:
    if not isinstance(error, ServiceError):
        raise TypeError(f"unexpected error type {type(error).__name__}")
    _count_rejection(request, error.reason)
    return error_response(error.status_code, error.message)


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
    _count_rejection(request, "invalid_request")
    return error_response(400, f"invalid request: {describe_validation_errors(error)}")


async def _render_unexpected_error(request: Request, error: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal error; the request was not processed")


def install_error_handlers(app: FastAPI) -> None:
    """Render every error as ``{"error": ...}``: ours, FastAPI's and, last, anything unexpected."""
    app.add_exception_handler(ServiceError, _render_service_error)
    app.add_exception_handler(StarletteHTTPException, _render_http_error)
    app.add_exception_handler(RequestValidationError, _render_validation_error)
    app.add_exception_handler(Exception, _render_unexpected_error)
