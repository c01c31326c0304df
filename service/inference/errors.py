"""Errors the core raises for requests it refuses: each carries its HTTP status and a reason.

Transports render them (REST as ``{"error": message}`` with ``status_code``; gRPC maps the
status to a code), and ``reason`` labels the refusal in the rejected-inputs metric.
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Protocol


class ServiceError(Exception):
    """A request the service refuses; ``reason`` labels it in the rejected-inputs metric.

    A subclass names its HTTP status and default reason as class keywords,
    ``class NotFound(ServiceError, status_code=404, reason="not_found")``, and the HTTP headers
    its refusal needs (a 503's ``Retry-After``) as ``headers``; other transports ignore them.
    """

    status_code = 400
    reason = "bad_request"
    headers: Mapping[str, str] = MappingProxyType({})

    def __init_subclass__(
        cls,
        *,
        status_code: int | None = None,
        reason: str | None = None,
        headers: Mapping[str, str] | None = None,
        **options: Any,
    ) -> None:
        super().__init_subclass__(**options)
        if status_code is not None:
            if not 400 <= status_code <= 599:
                raise ValueError(f"{cls.__name__}: a refusal's status is 4xx or 5xx")
            cls.status_code = status_code
        if reason is not None:
            cls.reason = reason
        if headers is not None:
            cls.headers = MappingProxyType(dict(headers))

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason


class BadRequest(ServiceError, status_code=400, reason="bad_request"):
    """Malformed request: missing file, broken multipart, bad tensor JSON."""


class Forbidden(ServiceError, status_code=403, reason="forbidden"):
    """Not allowed from where the request comes, whoever sends it."""


class NotFound(ServiceError, status_code=404, reason="not_found"):
    """Unknown model or model version."""


class PayloadTooLarge(ServiceError, status_code=413, reason="too_large"):
    """Too many bytes, pixels or images."""


class UnsupportedMediaType(ServiceError, status_code=415, reason="unsupported_media_type"):
    """Not an image, or a content type the route does not take."""


class NotReady(ServiceError, status_code=503, reason="not_ready"):
    """The model is not loaded (yet, or any more)."""


class Overloaded(ServiceError, status_code=503, reason="overloaded", headers={"Retry-After": "1"}):
    """More work in flight than the service may hold (MNIST_MAX_INFLIGHT_BYTES): come back soon.

    gRPC answers RESOURCE_EXHAUSTED, not the UNAVAILABLE of other 503s: the server is up, and
    a smaller or later request may pass.
    """


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
