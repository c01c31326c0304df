"""Request bodies charged to the in-flight memory budget (``service.inference.budget``).

A body is charged when the route first reads it, for twice its declared Content-Length (or
chunk by chunk when it has none): while it is read it is held both as the pieces received and
as the whole they are joined into, and /predict's form parts copy it again. It is given back
once the answer is written: until then its bytes, and
what the route makes of them, are held. A request answered without reading its body (a 401, a
404) never takes a share. Over the budget the read raises ``Overloaded`` (503 + Retry-After),
which the app renders like any refusal. The route's own charges (decoding, parsing, the model
call) grow the same share. A body of at most 64 KiB (``SMALL_BODY_BYTES``), handled on the event
loop, is not charged and never waits: the server hands a request to the app only once its body
is in, so such bodies cannot add up to much, and the hot path pays nothing for the budget.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.inference.budget import InflightBudget
from service.inference.limits import SMALL_BODY_BYTES
from service.rest.asgi import header

# Bytes held per byte of body: the pieces and the whole (see above).
HELD_PER_BODY_BYTE = 2
# A chunked body is charged in steps of at least this, so that a body of many small chunks
# does not ask the budget once a chunk.
CHUNKED_STEP_BYTES = 64 * 1024


class InflightBodies:
    """Charge each request body to ``budget`` from its first read to the end of its answer."""

    def __init__(self, app: ASGIApp, budget: InflightBudget) -> None:
        self.app = app
        self.budget = budget

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = header(scope, b"content-length")
        declared = int(length) if length is not None and length.isdigit() else None
        chunked = declared is None and header(scope, b"transfer-encoding") is not None
        if not chunked and (declared is None or declared <= SMALL_BODY_BYTES):
            await self.app(scope, receive, send)
            return
        async with self.budget.reserve(0) as reservation:
            received = 0

            async def charged_receive() -> Message:
                nonlocal received
                if declared is not None and reservation.nbytes == 0:
                    await reservation.extend(HELD_PER_BODY_BYTE * declared)
                message = await receive()
                received += len(message.get("body", b""))
                missing = HELD_PER_BODY_BYTE * received - reservation.nbytes
                if missing > 0 and received > SMALL_BODY_BYTES:
                    await reservation.extend(max(missing, CHUNKED_STEP_BYTES))
                return message

            await self.app(scope, charged_receive, send)
