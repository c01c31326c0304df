"""Response writes: a response's head goes out with the first part of its body, in one write.

No uvicorn internals here: ``HeadWithBody`` wraps an asyncio transport, and
``service.rest.uvicorn_hooks`` gives it to each request.
"""

import asyncio
from collections.abc import Callable

# uvicorn's interim response to ``Expect: 100-continue``, written before the response's head.
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# Bodies up to this size are copied behind the head; larger ones are written on their own.
COALESCED_BODY_BYTES = 64 * 1024


class HeadWithBody:
    """A request's transport whose response head waits for the first body write and goes out
    with it, in one ``write``: one segment and one wake-up of the client instead of two
    (benchmarks/levers.py, "head and body written apart", measures it). HEAD
    responses, which have no body write, do not get one; a head still held when the transport
    closes goes out first; a large body goes in a write of its own rather than being copied
    behind the head."""

    __slots__ = ("_close", "_head", "_head_written", "_transport")

    def __init__(self, transport: asyncio.Transport, close: Callable[[], None]) -> None:
        self._transport = transport
        self._close = close
        self._head: bytes | None = None
        self._head_written = False

    def write(self, data: bytes) -> None:
        if self._head_written or data == CONTINUE:
            self._transport.write(data)
        elif self._head is None:  # uvicorn writes the head before anything of the body
            self._head = data
        else:
            self._head_written = True
            head, self._head = self._head, None
            if len(data) <= COALESCED_BODY_BYTES:
                self._transport.write(head + data)
            else:
                self._transport.write(head)
                self._transport.write(data)

    def flush(self) -> None:
        if self._head is not None:
            self.write(b"")

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        """Flush the head, then close as the protocol decides (it may linger first)."""
        self.flush()
        self._close()

    def __getattr__(self, name: str) -> object:
        return getattr(self._transport, name)
