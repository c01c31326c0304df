"""The request body as the client sends it: refused in the ways a body can go wrong, and
charged to the in-flight memory budget (``service.inference.budget``) while it is held.

Refusals: over ``max_bytes`` (from its Content-Length, or while it is read), 413; the client
gone before the body's end, ``ClientClosedRequest`` (a 499 that is logged and counted, never a
traceback); stalled past the read timeout (``ReadTimeoutProtocol`` flags it), 408.

The charge: a body is charged when the route first reads it, for twice its declared
Content-Length (or chunk by chunk when it has none): while it is read it is held both as the
pieces received and as the whole they are joined into, and /predict's form parts copy it again.
It is given back once the answer is written: until then its bytes, and what the route makes of
them, are held. A request answered without reading its body (a 401, a 404) never takes a share.
Over the budget the read raises ``Overloaded`` (503 + Retry-After), which the app renders like
any refusal. The route's own charges (decoding, parsing, the model call) grow the same share. A
body of at most 64 KiB (``SMALL_BODY_BYTES``), handled on the event loop, is not charged and
never waits: the server hands a request to the app only once its body is in, so such bodies
cannot add up to much, and the hot path pays nothing for the budget.

One middleware and one ``receive`` wrapper do all of it, so a request pays for one.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.inference.budget import InflightBudget, Reservation
from service.inference.errors import PayloadTooLarge
from service.inference.limits import SMALL_BODY_BYTES
from service.rest.asgi import HttpMiddleware, header
from service.rest.connection import CONNECTION, Connection
from service.rest.errors import (
    ClientClosedRequest,
    RequestTimeout,
    body_stalled_message,
    refusal,
)

# Bytes held per byte of body: the pieces and the whole (see above).
HELD_PER_BODY_BYTE = 2
# A chunked body is charged in steps of at least this, so that a body of many small chunks
# does not ask the budget once a chunk.
CHUNKED_STEP_BYTES = 64 * 1024


class RequestBodies(HttpMiddleware):
    """Every request body read within ``max_bytes``, and charged to ``budget`` from its first
    read to the end of its answer when it is larger than ``SMALL_BODY_BYTES`` or chunked."""

    def __init__(self, app: ASGIApp, max_bytes: int, budget: InflightBudget) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        super().__init__(app)
        self.max_bytes = max_bytes
        self.budget = budget

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        length = header(scope, b"content-length")
        declared = int(length) if length is not None and length.isdigit() else None
        if declared is not None and declared > self.max_bytes:
            too_large = self.refusal_message(f"the request body is {declared} bytes")
            await refusal(scope, receive, send, PayloadTooLarge(too_large, "body_too_large"))
            return
        extensions = scope.get("extensions")
        body = BodyRead(receive, self, extensions.get(CONNECTION) if extensions else None)
        chunked = declared is None and header(scope, b"transfer-encoding") is not None
        if not chunked and (declared is None or declared <= SMALL_BODY_BYTES):
            await self.app(scope, body.receive, send)
            return
        async with self.budget.reserve(0) as reservation:
            await self.app(scope, ChargedRead(body.receive, reservation, declared).receive, send)

    def refusal_message(self, what: str) -> str:
        return f"{what}; at most {self.max_bytes} bytes are allowed"


class BodyRead:
    """One request's ``receive``, refused as ``RequestBodies`` says."""

    __slots__ = ("_connection", "_limits", "_receive", "complete", "received")

    def __init__(
        self, receive: Receive, limits: RequestBodies, connection: Connection | None
    ) -> None:
        self._receive, self._limits, self._connection = receive, limits, connection
        self.received = 0
        self.complete = False

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.disconnect":
            if not self.complete:
                raise ClientClosedRequest(f"the client went away after {self.received} bytes")
            return message
        self.received += len(message.get("body", b""))
        if self._connection is not None and self._connection.read_stalled:
            raise RequestTimeout(body_stalled_message(self.received))
        if self.received > self._limits.max_bytes:
            too_large = self._limits.refusal_message("the request body exceeds")
            raise PayloadTooLarge(too_large, "body_too_large")
        self.complete = not message.get("more_body", False)
        return message


class ChargedRead:
    """A large or chunked body's ``receive``, charged to a reservation as ``RequestBodies``
    says: all of a declared length at the first read, chunk by chunk otherwise."""

    __slots__ = ("_declared", "_receive", "_reservation", "received")

    def __init__(self, receive: Receive, reservation: Reservation, declared: int | None) -> None:
        self._receive, self._reservation, self._declared = receive, reservation, declared
        self.received = 0

    async def receive(self) -> Message:
        reservation = self._reservation
        if self._declared is not None and reservation.nbytes == 0:
            await reservation.extend(HELD_PER_BODY_BYTE * self._declared)
        message = await self._receive()
        self.received += len(message.get("body", b""))
        missing = HELD_PER_BODY_BYTE * self.received - reservation.nbytes
        if missing > 0 and self.received > SMALL_BODY_BYTES:
            await reservation.extend(max(missing, CHUNKED_STEP_BYTES))
        return message
