"""Every unary gRPC call counted, timed and logged: the gRPC twin of the REST app's
``RequestObserver``. It only observes: the servicer checks keys and answers refusals itself
(``service.grpc.status``), so it works with or without this interceptor."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from service.inference.metrics import Metrics
from service.logs import log_access

access_logger = logging.getLogger("service.access")

Behaviour = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


class CallObserver(grpc.aio.ServerInterceptor):
    """Wraps each unary-unary handler once per method; streaming ones (reflection, health
    Watch) pass through."""

    def __init__(self, metrics: Metrics, access_log: bool) -> None:
        self.metrics = metrics
        self.access_log = access_log
        self._observed: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = handler_call_details.method
        cached = self._observed.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        observed = grpc.unary_unary_rpc_method_handler(
            self._observed_behaviour(method, handler.unary_unary),
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

            self.metrics.requests_in_progress += 1
            try:
                response = await behaviour(request, ObservedContext(context, record_abort))
            except asyncio.CancelledError:
                self._record(method, grpc.StatusCode.CANCELLED, time.perf_counter() - started)
                raise
            except BaseException:
                if not aborts:
                    self._record(method, context.code(), time.perf_counter() - started)
                raise
            finally:
                self.metrics.requests_in_progress -= 1
            self._record(
                method, context.code() or grpc.StatusCode.OK, time.perf_counter() - started
            )
            return response

        return observed

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
