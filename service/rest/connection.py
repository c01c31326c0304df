"""What the app and the HTTP server tell each other about connections, without either's types.

The app gives the server a ``ConnectionPolicy`` through the lifespan state (``CONNECTION_POLICY``);
the server gives each request its connection in ``scope["extensions"][CONNECTION]``, whose
``read_stalled`` ``service.rest.bodies`` reads. ``service.rest.uvicorn_hooks`` is the server
side; a server without it (another ASGI server, the test client) simply gives no connection.

A client that stops sending in the middle of its headers or body would hold its connection
for as long as it likes. Each connection keeps the time of its last read and one timer,
re-armed only when it fires: headers stalled past the timeout get a JSON 408 from the protocol
itself (counted through the app's ``ConnectionPolicy``), as does a stalled body while the app
has not been handed the request; once it has, the protocol sets ``read_stalled`` on the
request's ``CONNECTION`` extension and ``service.rest.bodies`` answers the 408. A new connection
that sends nothing is closed after uvicorn's keep-alive timeout. Time with reading paused by
uvicorn's flow control is the server's wait, not the client's stall.

A request reaches the app once its body is complete (or 64 KiB of it are buffered, or the
client expects ``100 Continue``), as nginx buffers requests: a client trickling its body holds
a parser and a buffer, not a task with the app's frames. Should the client go away or stall
first, the protocol counts the 499 or answers the 408 itself, under the request's route.

Headers are bounded (``max_header_bytes``, ``max_headers``: a JSON 431) as they stream in and
once parsed. After an answer given before the request's body was in (a 401, a 404, a 413, or one
given instead of ``100 Continue``) the connection lingers (``Lingering``): the rest is read and
discarded within bounds, then the connection closes, as nginx's lingering close. Closing at once
would reset a client still sending, which may then never read the answer; keeping the
connection would let a client that sends a few bytes and goes quiet hold it for good.
"""

from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol

from service.rest.errors import error_body

# The lifespan state key under which the app gives the server its ``ConnectionPolicy``.
CONNECTION_POLICY = "mnist.connection_policy"
# The ``scope["extensions"]`` key of the request's ``Connection``.
CONNECTION = "mnist.connection"
HEADERS_STALLED = (
    "the request headers stalled for longer than the read timeout; send the whole request "
    "without pausing"
)

INVALID_REQUEST = "the request is not valid HTTP/1.1; it was not processed"


class HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a request line and headers over bounds."""


# A request the server answered or lost before the app had it: (its ASGI scope, None while its
# headers are incomplete; status; metric reason; seconds).
RefusalRecorder = Callable[[dict[str, Any] | None, int, str, float], None]


@dataclass(frozen=True)
class ConnectionPolicy:
    """What the app tells the server about its connections, through the lifespan state."""

    read_timeout: float
    # Counts and logs a request the server answered or lost before the app had it.
    record_refusal: RefusalRecorder
    # A body whose Content-Length is larger goes to the app at once, for its immediate 413.
    max_body_bytes: int = 32 * 1024 * 1024
    # The request line and headers: most bytes and most header lines (then 431).
    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    # After an answer given before the request's body was in: the rest of it is read and
    # discarded for at most this long in all, this long without a byte, and this many bytes.
    linger_seconds: float = 30.0
    linger_timeout: float = 5.0
    linger_bytes: int = 32 * 1024 * 1024


DEFAULT_POLICY = ConnectionPolicy(read_timeout=30.0, record_refusal=lambda *refusal: None)


class Connection(Protocol):
    """A request's connection, as the server hands it to the app."""

    read_stalled: bool


def declares_too_much(headers: list[tuple[bytes, bytes]], policy: ConnectionPolicy) -> bool:
    """Whether the Content-Length alone is over the limit: the app then answers 413 at once."""
    for name, value in headers:
        if name == b"content-length":
            return value.isdigit() and int(value) > policy.max_body_bytes
    return False


def head_refusal(
    url: bytes, headers: list[tuple[bytes, bytes]], policy: ConnectionPolicy
) -> str | None:
    """Why a parsed request line and headers are over the policy's bounds (a 431), or None."""
    if len(headers) > policy.max_headers:
        return f"the request has more than {policy.max_headers} header lines"
    size = len(url)
    for name, value in headers:  # a loop, not sum() over a generator: once per request
        size += len(name) + len(value) + 4
    return head_size_refusal(policy) if size > policy.max_header_bytes else None


def head_size_refusal(policy: ConnectionPolicy) -> str:
    return f"the request line and headers are larger than {policy.max_header_bytes} bytes"


class Lingering:
    """The rest of a body answered before it was in, read and discarded within the policy's
    bounds (nginx's lingering close): in all, since the last byte, and in bytes."""

    __slots__ = ("began", "discarded", "last_read", "policy")

    def __init__(self, policy: ConnectionPolicy, now: float) -> None:
        self.policy = policy
        self.began = self.last_read = now
        self.discarded = 0

    def discard(self, size: int, now: float) -> bool:
        """Count ``size`` more bytes read at ``now``: whether that is more than may be read."""
        self.last_read = now
        self.discarded += size
        return self.discarded > self.policy.linger_bytes

    def seconds_left(self, now: float) -> float:
        """How long the connection may still linger (0: close it now)."""
        quiet_until = self.last_read + self.policy.linger_timeout
        return max(min(quiet_until, self.began + self.policy.linger_seconds) - now, 0.0)


def protocol_answer(
    status: HTTPStatus, message: str, default_headers: list[tuple[bytes, bytes]]
) -> bytes:
    """A JSON error the server writes itself (no app has the request), closing the connection."""
    body = error_body(message)
    content = [b"HTTP/1.1 %d %s\r\n" % (status, status.phrase.encode())]
    for name, value in default_headers:
        content += [name, b": ", value, b"\r\n"]
    content += [
        b"content-type: application/json\r\n",
        b"content-length: %d\r\n" % len(body),
        b"connection: close\r\n\r\n",
        body,
    ]
    return b"".join(content)
