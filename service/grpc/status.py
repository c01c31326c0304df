"""The one place gRPC answers a refusal: the core's ``ServiceError`` becomes the status code that
means the same as its HTTP status, with the message REST sends; anything unexpected is logged
with its traceback and answered INTERNAL, never UNKNOWN. Every servicer method is ``answered``.
"""

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError

from service.inference.auth import ApiKeys
from service.inference.errors import BadRequest, ServiceError
from service.inference.metrics import Metrics

logger = logging.getLogger("service.grpc")

CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    408: grpc.StatusCode.DEADLINE_EXCEEDED,
    409: grpc.StatusCode.FAILED_PRECONDITION,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    499: grpc.StatusCode.CANCELLED,
    503: grpc.StatusCode.UNAVAILABLE,
}
INTERNAL_ERROR_MESSAGE = "internal error; see the server log"


def status_code(error: ServiceError) -> grpc.StatusCode:
    """The code for ``error``'s HTTP status: any other 4xx is a bad argument, a 5xx internal."""
    code = CODES.get(error.status_code)
    if code is not None:
        return code
    if 400 <= error.status_code < 500:
        return grpc.StatusCode.INVALID_ARGUMENT
    return grpc.StatusCode.INTERNAL


class Undecodable:
    """Bytes the method's deserializer refused: grpc itself would answer them UNKNOWN."""

    def __init__(self, message: str) -> None:
        self.message = message


def lenient(deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """``deserializer``, with bytes protobuf refuses given to the method as ``Undecodable``, so
    that the method answers INVALID_ARGUMENT naming the problem."""

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError as error:
            return Undecodable(f"the request is not a valid {_message_name(error)} ({_why(error)})")

    return deserialize


def _message_name(error: DecodeError) -> str:
    """protobuf names the type: "Error parsing message with type 'x.Y': Wire format was corrupt"."""
    text = str(error)
    return text.split("'")[1] if text.count("'") >= 2 else "protobuf message"


def _why(error: DecodeError) -> str:
    return str(error).rsplit(": ", 1)[-1].lower()


def authorization(context: grpc.aio.ServicerContext) -> str | None:
    """The ``authorization`` metadata of the call, or None."""
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return value if isinstance(value, str) else value.decode("latin-1")
    return None


class Answering:
    """What ``answered`` needs of the servicer: its metrics and its API keys (None: no keys)."""

    metrics: Metrics
    keys: ApiKeys | None


Servicer = TypeVar("Servicer", bound=Answering)
Method = Callable[[Servicer, Any, grpc.aio.ServicerContext], Awaitable[Any]]


def answered(*, open_to_all: bool = False) -> Callable[[Method], Method]:
    """A servicer method whose refusals become status codes: its API key checked (unless the
    method is ``open_to_all``, as health is), its undecodable request refused, a
    ``ServiceError`` counted under its reason and aborted with its code and message."""

    def decorate(method: Method) -> Method:
        @functools.wraps(method)
        async def answer(self: Servicer, request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                if self.keys is not None and not open_to_all:
                    self.keys.check(authorization(context))
                if isinstance(request, Undecodable):
                    raise BadRequest(request.message, "bad_message")
                return await method(self, request, context)
            except ServiceError as error:
                self.metrics.rejected_inputs.labels(error.reason).inc()
                code, message = status_code(error), error.message
            except (grpc.aio.AbortError, asyncio.CancelledError):
                raise
            except Exception:
                logger.exception("unhandled error in %s", method.__name__)
                code, message = grpc.StatusCode.INTERNAL, INTERNAL_ERROR_MESSAGE
            await context.abort(code, message)

        return answer

    return decorate
