"""Errors the core raises for requests it refuses: each carries its HTTP status and a reason.

Transports render them (REST as ``{"error": message}`` with ``status_code``; gRPC maps the
status to a code), and ``reason`` labels the refusal in the rejected-inputs metric.
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Protocol


class ServiceError(Exception):
    """A request the service refuses; ``reason`` labels it in the rejected-inputs metric.

    ``headers`` are HTTP headers the refusal needs (a 401's ``WWW-Authenticate``); other
    transports ignore them.
    """

    status_code = 400
    reason = "bad_request"
    headers: Mapping[str, str] = MappingProxyType({})

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason


class BadRequest(ServiceError):
    """Malformed request: missing file, broken multipart, bad tensor JSON."""

    status_code = 400
    reason = "bad_request"


class Forbidden(ServiceError):
    """Not allowed from where the request comes, whoever sends it."""

    status_code = 403
    reason = "forbidden"


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


class Overloaded(ServiceError):
    """More work in flight than the service may hold (MNIST_MAX_INFLIGHT_BYTES): come back soon.

    gRPC answers RESOURCE_EXHAUSTED, not the UNAVAILABLE of other 503s: the server is up, and
    a smaller or later request may pass.
    """

    status_code = 503
    reason = "overloaded"
    headers = MappingProxyType({"Retry-After": "1"})


class HasValidationErrors(Protocol):
    """pydantic's ``ValidationError`` and FastAPI's ``RequestValidationError`` alike."""

    def errors(self) -> object: ...


def describe_validation_errors(error: HasValidationErrors) -> str:
    """What pydantic refused, in one line: ``field.path: message; ...``."""
    return "; ".join(
        f"{'.'.join(str(part) for part in detail['loc'])}: {detail['msg']}"
        for detail in error.errors()
    )


def invalid_request(error: HasValidationErrors) -> BadRequest:
    """A request body that its schema refuses: worded like the REST layer's validation errors."""
    return BadRequest(f"invalid request: {describe_validation_errors(error)}", "invalid_request")
