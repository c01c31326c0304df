"""What the app and the HTTP server tell each other about connections, without either's types.

The app gives the server a ``ConnectionPolicy`` through the lifespan state (``CONNECTION_POLICY``);
the server gives each request its connection in ``scope["extensions"][CONNECTION]``, whose
``read_stalled`` the body guard reads. ``service.rest.uvicorn_hooks`` is the server side; a
server without it (another ASGI server, the test client) simply gives no connection.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

# The lifespan state key under which the app gives the server its ``ConnectionPolicy``.
CONNECTION_POLICY = "mnist.connection_policy"
# The ``scope["extensions"]`` key of the request's ``Connection``.
CONNECTION = "mnist.connection"
HEADERS_STALLED = (
    "the request headers stalled for longer than the read timeout; send the whole request "
    "without pausing"
)

# A request the server answered or lost before the app had it: (its ASGI scope, None while its
# headers are incomplete; status; metric reason; seconds).
RefusalRecorder = Callable[[dict[str, Any] | None, int, str, float], None]


@dataclass(frozen=True)
class ConnectionPolicy:
    """What the app tells the server about its connections, through the lifespan state."""

    read_timeout: float
    # Counts and logs a request the server answered or lost before the app had it.
    record_refusal: RefusalRecorder


DEFAULT_POLICY = ConnectionPolicy(read_timeout=30.0, record_refusal=lambda *refusal: None)


class Connection(Protocol):
    """A request's connection, as the server hands it to the app."""

    read_stalled: bool
