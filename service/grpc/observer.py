"""Every unary gRPC call counted, timed and logged: the gRPC twin of the REST app's
``RequestObserver``. It only observes: the servicer checks keys and answers refusals itself
(``service.grpc.status``), so it works with or without this interceptor."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from service.inference.metrics import Metrics
from service.logs import log_access

access_logger = logging.getLogger("service.access")

Behaviour = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
# The metric's label for a method no service defines: client-chosen names stay out of the labels.
UNKNOWN_METHOD = "unknown"
UNIMPLEMENTED_MESSAGE = "method {method} is not implemented by this server"
# The longest method name written to the access log or an answer, in characters.
LOGGED_METHOD_CHARACTERS = 200


def logged_name(method: str) -> str:
    """A client-chosen method name, cut to a length fit for a log line."""
    return method[:LOGGED_METHOD_CHARACTERS]


class CallObserver(grpc.aio.ServerInterceptor):
    """Wraps each unary handler once per method (unary-unary, or stream-unary when
    ``service.grpc.admission`` reads the message); streaming ones (reflection, health Watch)
    pass through; a method no service serves is answered UNIMPLEMENTED, counted and logged like
    any other call. ``known_methods``: full names (``/package.Service/Method``) that keep their
    own label in the metric then; any other is counted as ``unknown``. ``internal_methods``:
    calls the server makes to itself (the drain's marker), neither counted nor logged."""

    def __init__(
        self,
        metrics: Metrics,
        access_log: bool,
        known_methods: frozenset[str] = frozenset(),
        internal_methods: frozenset[str] = frozenset(),
    ) -> None:
        self.metrics = metrics
        self.access_log = access_log
        self.known_methods = known_methods
        self.internal_methods = internal_methods
        self._observed: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if method in self.internal_methods:
            return handler
        if handler is None:
            return self._unimplemented(method)
        if (handler.unary_unary or handler.stream_unary) is None:
            return handler
        cached = self._observed.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        # Stream-unary: a unary method whose message service.grpc.admission reads.
        make_handler = (
            grpc.unary_unary_rpc_method_handler
            if handler.unary_unary is not None
            else grpc.stream_unary_rpc_method_handler
        )
        observed = make_handler(
            self._observed_behaviour(method, handler.unary_unary or handler.stream_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        self._observed[method] = (handler, observed)
        return observed

    def _observed_behaviour(self, method: str, behaviour: Behaviour) -> Behaviour:
        """The call's code is counted and logged before the client can see it: grpc sends an
        aborted call's status from within ``abort``, so an abort is recorded as it is made."""

        async def observed(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            aborts: list[grpc.StatusCode] = []

            def record_abort(code: grpc.StatusCode) -> None:
                aborts.append(code)
                self._record(method, code, time.perf_counter() - started)

            try:
                response = await behaviour(request, ObservedContext(context, record_abort))
            except asyncio.CancelledError:
                self._record(method, grpc.StatusCode.CANCELLED, time.perf_counter() - started)
                raise
            except BaseException:
                if not aborts:
                    self._record(method, context.code(), time.perf_counter() - started)
                raise
            self._record(
                method, context.code() or grpc.StatusCode.OK, time.perf_counter() - started
            )
            return response

        return observed

    def _unimplemented(self, method: str) -> grpc.RpcMethodHandler:
        """What grpc answers a method nobody serves (UNIMPLEMENTED), counted and logged. A
        stream-stream handler reads no message, so it answers calls of every kind; it is an
        async generator (which ends at the abort), the form OpenTelemetry's gRPC interceptor
        expects of a streaming handler."""
        label = method if method in self.known_methods else UNKNOWN_METHOD

        async def unimplemented(
            requests: Any, context: grpc.aio.ServicerContext
        ) -> AsyncIterator[None]:
            code = grpc.StatusCode.UNIMPLEMENTED
            self.metrics.observe_grpc_call(label.lstrip("/"), code.name, 0.0)
            if self.access_log:
                log_access(access_logger, "gRPC %s %s %.2fms", logged_name(method), code.name, 0.0)
            await context.abort(code, UNIMPLEMENTED_MESSAGE.format(method=logged_name(method)))
            yield  # never reached: abort raises

        return grpc.stream_stream_rpc_method_handler(unimplemented)

    def _record(self, method: str, code: grpc.StatusCode | None, seconds: float) -> None:
        name = (code or grpc.StatusCode.UNKNOWN).name
        self.metrics.observe_grpc_call(method.lstrip("/"), name, seconds)
        if self.access_log:
            log_access(access_logger, "gRPC %s %s %.2fms", method, name, seconds * 1000.0)


class ObservedContext:
    """A call's context whose ``abort`` tells the observer the code before grpc sends it."""

    __slots__ = ("_context", "_on_abort")

    def __init__(
        self, context: grpc.aio.ServicerContext, on_abort: Callable[[grpc.StatusCode], None]
    ) -> None:
        self._context = context
        self._on_abort = on_abort

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: tuple = ()
    ) -> None:
        self._on_abort(code)
        await self._context.abort(code, details, trailing_metadata)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)
