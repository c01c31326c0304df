"""Request bodies charged to the in-flight memory budget (``service.inference.budget``).

A body is charged when the route first reads it, for its declared Content-Length (or chunk by
chunk when it has none), and given back once the answer is written: until then its bytes, and
what the route makes of them, are held. A request answered without reading its body (a 401, a
404) never takes a share. Over the budget the read raises ``Overloaded`` (503 + Retry-After),
which the app renders like any refusal.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.inference.budget import InflightBudget
from service.rest.asgi import header

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
        if declared == 0 or (declared is None and header(scope, b"transfer-encoding") is None):
            await self.app(scope, receive, send)
            return
        budget = self.budget
        held = 0
        received = 0

        async def charged_receive() -> Message:
            nonlocal held, received
            if declared is not None and held == 0:
                await budget.acquire(declared)
                held = declared
            message = await receive()
            received += len(message.get("body", b""))
            if received > held:
                step = max(received - held, CHUNKED_STEP_BYTES)
                await budget.acquire(step, held)
                held += step
            return message

        try:
            await self.app(scope, charged_receive, send)
        finally:
            if held:
                budget.release(held)
