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
        """The call's code is counted and logged before the client can see it."""

        async def observed(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            try:
                response = await behaviour(request, context)
            except asyncio.CancelledError:
                self._record(method, grpc.StatusCode.CANCELLED, time.perf_counter() - started)
                raise
            except BaseException:
                self._record(method, context.code(), time.perf_counter() - started)
                raise
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
