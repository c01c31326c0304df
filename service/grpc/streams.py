"""Streaming methods (reflection, health's Watch) read their request messages under the same
bounds as unary ones (``service.grpc.admission``): grpc would otherwise read each, up to the
largest message size, outside the in-flight budget and with no time limit. Reflection needs
the API key when keys are on.

Each such method is registered as stream-stream (the same bytes on the wire): a unary request
is read once, a stream of requests one message at a time. A refusal while reading ends the call
with its status code.
"""

import inspect
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import grpc

from service.grpc.status import authorization, status_code
from service.inference.auth import ApiKeys
from service.inference.errors import BadRequest, ServiceError

if TYPE_CHECKING:
    from service.grpc.admission import Admission

StreamBehaviour = Callable[[Any, grpc.aio.ServicerContext], Any]
# Streaming methods that need the API key when keys are on: reflection describes every method
# (health's Watch stays open, as health does).
KEYED_STREAMS = frozenset({"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"})


def bounded_stream(
    admission: "Admission",
    method: str,
    handler: grpc.RpcMethodHandler,
    request_deserializer: Callable[[bytes], Any],
) -> grpc.RpcMethodHandler:
    """``handler`` as a stream-stream one whose request messages ``admission`` reads (with
    ``request_deserializer``, which tells their size), after the API key check of a method in
    ``KEYED_STREAMS``; a handler with a unary response is left as it is (the services have
    none)."""
    if handler.unary_stream is not None:
        behaviour = _one_request(admission, handler.unary_stream)
    elif handler.stream_stream is not None:
        behaviour = _each_request(admission, handler.stream_stream)
    else:
        return handler
    keys = admission.keys if method in KEYED_STREAMS else None
    return grpc.stream_stream_rpc_method_handler(
        _answered(admission, behaviour, keys),
        request_deserializer=request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _one_request(admission: "Admission", behaviour: StreamBehaviour) -> StreamBehaviour:
    async def one(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
        request = await admission.read_stream_message(context)
        if request is None:
            raise BadRequest("the call ended without a request message", "no_message")
        return behaviour(request, context)

    return one


def _each_request(admission: "Admission", behaviour: StreamBehaviour) -> StreamBehaviour:
    async def each(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
        async def messages() -> AsyncIterator[Any]:
            while (request := await admission.read_stream_message(context)) is not None:
                yield request

        return behaviour(messages(), context)

    return each


def _answered(
    admission: "Admission", behaviour: StreamBehaviour, keys: ApiKeys | None
) -> StreamBehaviour:
    """The responses of ``behaviour`` (an async generator, or a coroutine writing them with
    ``context.write``) once the key is checked; a ``ServiceError`` becomes its status code."""

    async def answered(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext):
        try:
            if keys is not None:
                keys.check(authorization(context))
            result = await behaviour(requests, context)
            if inspect.isasyncgen(result):
                async for response in result:
                    yield response
            elif inspect.isawaitable(result):
                await result
        except ServiceError as error:
            admission.metrics.rejected_inputs.labels(error.reason).inc()
            await context.abort(status_code(error), error.message)

    return answered
