"""Every unary gRPC call counted, timed and logged, and its refusal rendered as a status code.

The gRPC twin of the REST app's ``RequestObserver`` and error handlers, in one interceptor: the
core's ``ServiceError`` becomes its code with the same message REST sends; anything unexpected
is logged with its traceback and answered INTERNAL, never UNKNOWN.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from service.grpc.admission import Admission, sized
from service.grpc.status import status_code
from service.inference.auth import ApiKeys
from service.inference.errors import BadRequest, ServiceError
from service.inference.metrics import Metrics
from service.logs import log_access

access_logger = logging.getLogger("service.access")
logger = logging.getLogger("service.grpc")

Behaviour = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
# Health stays open with API keys on, as REST's health routes do, so that probes need no key.
OPEN_METHODS = frozenset(
    {
        "/inference.GRPCInferenceService/ServerLive",
        "/inference.GRPCInferenceService/ServerReady",
        "/inference.GRPCInferenceService/ModelReady",
        "/grpc.health.v1.Health/Check",
    }
)


class Undecodable:
    """Bytes the method's deserializer refused: grpc itself would answer them UNKNOWN."""

    def __init__(self, message: str) -> None:
        self.message = message


def _lenient(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

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


def _decoded(behaviour: Behaviour) -> Behaviour:
    """``behaviour``, refusing a request its deserializer could not read."""

    async def decoded(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, Undecodable):
            raise BadRequest(request.message, "bad_message")
        return await behaviour(request, context)

    return decoded


def _authorization(context: grpc.aio.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return value if isinstance(value, str) else value.decode("latin-1")
    return None


class CallObserver(grpc.aio.ServerInterceptor):
    """Wraps each unary-unary handler; streaming ones (reflection, health Watch) pass through.
    ``readers`` replace the generated request deserializers of the methods they name; with an
    ``admission``, the request message is read under its bounds, after the key check.

    With API keys, every call but the health ones needs ``authorization: Bearer <key>`` in its
    metadata, checked by the core's ``ApiKeys`` as REST checks its header (UNAUTHENTICATED).
    """

    def __init__(
        self,
        metrics: Metrics,
        access_log: bool,
        keys: ApiKeys | None = None,
        readers: Mapping[str, Callable[[bytes], Any]] | None = None,
        admission: Admission | None = None,
    ) -> None:
        self.metrics = metrics
        self.access_log = access_log
        self.keys = keys
        self.readers = dict(readers or {})
        self.admission = admission

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = handler_call_details.method
        reader = _lenient(self.readers.get(method, handler.request_deserializer))
        behaviour = _decoded(handler.unary_unary)
        if self.admission is None:
            return grpc.unary_unary_rpc_method_handler(
                self._observed(method, behaviour),
                request_deserializer=reader,
                response_serializer=handler.response_serializer,
            )
        # Registered as stream-unary: the message is read by the admission, under its bounds.
        return grpc.stream_unary_rpc_method_handler(
            self._observed(method, self.admission.one_message(behaviour)),
            request_deserializer=sized(reader),
            response_serializer=handler.response_serializer,
        )

    def _observed(self, method: str, behaviour: Behaviour) -> Behaviour:
        """The call's code is counted and logged before the client can see it."""

        async def observed(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            code, message, response = grpc.StatusCode.OK, None, None
            try:
                if self.keys is not None and method not in OPEN_METHODS:
                    self.keys.check(_authorization(context))
                response = await behaviour(request, context)
            except ServiceError as error:
                self.metrics.rejected_inputs.labels(error.reason).inc()
                code, message = status_code(error), error.message
            except grpc.aio.AbortError:
                self._record(method, context.code(), time.perf_counter() - started)
                raise
            except asyncio.CancelledError:
                self._record(method, grpc.StatusCode.CANCELLED, time.perf_counter() - started)
                raise
            except Exception:
                logger.exception("unhandled error in %s", method)
                code, message = grpc.StatusCode.INTERNAL, "internal error; see the server log"
            self._record(method, context.code() or code, time.perf_counter() - started)
            if message is not None:
                await context.abort(code, message)
            return response

        return observed

    def _record(self, method: str, code: grpc.StatusCode | None, seconds: float) -> None:
        name = (code or grpc.StatusCode.UNKNOWN).name
        self.metrics.observe_grpc_call(method.lstrip("/"), name, seconds)
        if self.access_log:
            log_access(access_logger, "gRPC %s %s %.2fms", method, name, seconds * 1000.0)
