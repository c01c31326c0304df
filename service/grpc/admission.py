"""A unary call's request message, read under bounds before its method runs.

grpc reads a unary call's message before the method is called, opening the stream's flow-control
window to the message's full length as soon as the call starts: a client that sends all but the
last byte of a 30 MiB message holds 30 MiB for as long as it likes, and the in-flight budget
never hears of it. So each unary method is registered as stream-unary (the same bytes on the
wire; clients see no difference) and its one message is read here:

- only while the call holds a share of the in-flight budget (``service.inference.budget``) as
  large as two copies of the largest message (grpc's, and the bytes the method gets), shrunk to
  two of the real size once it has arrived: bytes still arriving count like bytes decoded. A
  call that finds no room waits, then gets RESOURCE_EXHAUSTED;
- within ``MNIST_GRPC_RECEIVE_SECONDS`` of the call's start, else DEADLINE_EXCEEDED, and grpc
  lets go of what arrived; a message still arriving after a second is refused the same way
  unless the slow ones hold less than half the budget, so that a few stalled clients cannot
  hold all of it (``service.grpc.arrival``);
- and not at all once the server is stopping, unless it came before the stop: UNAVAILABLE, a
  status clients retry elsewhere.

Until the message is asked for, a stream's window stays at 64 KiB (``service.grpc.bounds``
turns off the probing that would grow it).

Messages are read with ``context.read()``, never through the request iterator grpc passes: that
iterator is an async generator that keeps the last message it yielded until it is resumed or
collected, and one read once is neither. It sits in a reference cycle that only the cyclic
garbage collector frees, so every answered call's message stayed resident, outside the budget,
after the call had given its share back (docs/operations.md, "Limits and security"). A refusal
makes such a cycle too: grpc keeps the abort's exception on the call, and its traceback holds
the frames that held the message. So the message is dropped before this module aborts a call,
and the frames under it are cleared of their locals when the method refuses the call itself.
"""

import asyncio
import contextlib
import secrets
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import grpc

from service.grpc.arrival import SlowMessages, read_message
from service.grpc.status import authorization, status_code
from service.grpc.streams import bounded_stream
from service.inference.auth import ApiKeys
from service.inference.budget import InflightBudget
from service.inference.errors import BadRequest, ServiceError
from service.inference.metrics import Metrics

Behaviour = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
# A message is held twice while it is read: by grpc, and as the bytes given to the method.
COPIES = 2
# A call to no service, that a stopping server sends itself (see ``Admission``).
MARKER_METHOD = "/mnist_mlp.Drain/Marker"
MARKER_KEY = "x-drain-marker"
# Once those have ended, the stop waits until calls stop coming for a moment (a client told
# UNAVAILABLE goes elsewhere), but not longer than this.
QUIET_SECONDS = 0.05
QUIET_WAIT_SECONDS = 1.0
# Per call (each grpc call runs in its own task): handed over before the stop's marker?
_came_before_marker: ContextVar[bool] = ContextVar("came_before_marker", default=True)


class Stopping(ServiceError, status_code=503, reason="stopping"):
    """The server is stopping; the client should try another."""


@dataclass(frozen=True, slots=True)
class Received:
    """A request message as read off the wire: its size there, and what it decoded to."""

    nbytes: int
    message: Any


def sized(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Received]:
    """``deserializer`` that also tells the message's size on the wire."""

    def deserialize(data: bytes) -> Received:
        return Received(len(data), data if deserializer is None else deserializer(data))

    return deserialize


class Admission(grpc.aio.ServerInterceptor):
    """Registers each unary method as stream-unary and reads its message under the bounds above,
    after the API key check of a method that needs one; and lets a stop serve every call
    received before it (``drained``).

    grpc's own stop cancels at once, with no status the service sees, every call it has
    received but not yet handed to the service: under load most of the calls in flight wait
    there. So a stop first sends a marker call to this very server, on a loopback port of this
    worker's own: grpc hands calls over in the order they came, so the calls handed over
    before the marker came before the stop and are served; those after it are refused with
    UNAVAILABLE. Only once the served ones have ended, and calls have stopped coming for a
    moment, does grpc stop.

    Interceptors come in order: this one after the observer (which then logs its refusals),
    before any that would await before handing a call on.
    """

    def __init__(
        self,
        budget: InflightBudget,
        largest_message: int,
        receive_seconds: float,
        metrics: Metrics,
        keys: ApiKeys | None = None,
        costs: Mapping[str, Callable[[Any], int]] | None = None,
    ) -> None:
        if COPIES * largest_message > budget.capacity:
            raise ValueError(f"{COPIES} of the largest message must fit in the in-flight budget")
        if receive_seconds <= 0:
            raise ValueError("receive_seconds must be positive")
        self.budget = budget
        self.largest_message = largest_message
        self.receive_seconds = receive_seconds
        self.metrics = metrics
        self.keys = keys
        self.costs = dict(costs or {})
        self.slow = SlowMessages(budget.capacity // 2, receive_seconds)
        self.stopping = False
        self.marker_seen = False
        self.in_flight = 0
        self._token = secrets.token_hex(16)
        self._last_call = 0.0
        self._changed: asyncio.Event | None = None
        self._admitted: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        if method == MARKER_METHOD:
            if (MARKER_KEY, self._token) in tuple(handler_call_details.invocation_metadata):
                self.marker_seen = True
                self._notify()
            return None
        # Before any await: in the order grpc hands calls over.
        _came_before_marker.set(not self.marker_seen)
        self._last_call = asyncio.get_running_loop().time()
        self.in_flight += 1
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            self._ended()  # Not a unary call: grpc's stop waits for it.
            if handler is None:
                return None
            return bounded_stream(self, method, handler, sized(handler.request_deserializer))
        cached = self._admitted.get(method)
        if cached is None or cached[0] is not handler:
            admitted = grpc.stream_unary_rpc_method_handler(
                self._one_message(handler.unary_unary, self.costs.get(method)),
                request_deserializer=sized(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
            cached = self._admitted[method] = (handler, admitted)
        return cached[1]

    def _one_message(
        self, behaviour: Behaviour, cost: Callable[[Any], int] | None = None
    ) -> Behaviour:
        """A stream-unary behaviour that reads one message, then runs ``behaviour`` on it,
        first growing its share by ``cost(message)``: what the method's work will hold."""
        keys = self.keys if getattr(behaviour, "needs_key", False) else None

        async def admitted(requests: AsyncIterator[Received], context: Any) -> Any:
            """``requests`` is left unread: see the module's docstring."""
            received: Received | None = None
            try:
                if self.stopping and not _came_before_marker.get():
                    raise Stopping("the server is stopping; retry on another instance")
                if keys is not None:
                    keys.check(authorization(context))
                deadline = asyncio.get_running_loop().time() + self.receive_seconds
                reading = COPIES * self.largest_message
                async with self.budget.reserve(reading) as reservation:
                    received = await read_message(context, deadline, reading, self.slow)
                    if received is None:
                        raise BadRequest("the call ended without a request message", "no_message")
                    reservation.shrink(reading - COPIES * received.nbytes)
                    if cost is not None:
                        await reservation.extend(cost(received.message))
                    return await behaviour(received.message, context)
            except ServiceError as error:  # Raised here: the method's own are answered.
                self.metrics.rejected_inputs.labels(error.reason).inc()
                refusal = status_code(error), error.message
            except grpc.aio.AbortError as aborted:  # The method's own refusal.
                traceback.clear_frames(aborted.__traceback__)
                raise
            finally:
                received = None
                self._ended()
            await context.abort(*refusal)

        return admitted

    async def read_stream_message(self, context: grpc.aio.ServicerContext) -> Any | None:
        """A streaming call's next message, read under the same bounds, or None at its end.
        The share is given back once it has arrived: such messages are small and handled at
        once (reflection, health)."""
        reading = COPIES * self.largest_message
        async with self.budget.reserve(reading):
            deadline = asyncio.get_running_loop().time() + self.receive_seconds
            received = await read_message(context, deadline, reading, self.slow)
        return None if received is None else received.message

    def _ended(self) -> None:
        self.in_flight -= 1
        self._notify()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()

    async def drained(self, marker_target: str) -> None:
        """From now on refuse the calls that come after the marker sent to ``marker_target``
        (this server); return once every call before it has ended. The caller bounds the wait."""
        self.stopping = True
        self._changed = asyncio.Event()
        marker = asyncio.ensure_future(self._send_marker(marker_target))
        try:
            while not (self.marker_seen and self.in_flight == 0):
                self._changed.clear()
                await self._changed.wait()
        finally:
            marker.cancel()
        await self._quiet()

    async def _quiet(self) -> None:
        """Wait (at most ``QUIET_WAIT_SECONDS``) until no call has come for ``QUIET_SECONDS``:
        the calls that grpc holds, not yet handed over, would be cancelled by its stop."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + QUIET_WAIT_SECONDS
        while (now := loop.time()) < give_up and now - self._last_call < QUIET_SECONDS:
            await asyncio.sleep(QUIET_SECONDS - (now - self._last_call))

    async def _send_marker(self, target: str) -> None:
        async with grpc.aio.insecure_channel(target) as channel:
            call = channel.unary_unary(MARKER_METHOD)
            with contextlib.suppress(grpc.aio.AioRpcError):
                await call(b"", metadata=((MARKER_KEY, self._token),))
