"""Everything that touches uvicorn's internals: the HTTP protocol with the read timeout uvicorn
lacks (``MNIST_READ_TIMEOUT``), and the worker supervisor whose SIGHUP reloads in place.

Tested with uvicorn 0.55.0 (``TESTED_UVICORN``), and pinned to it in pyproject.toml: the names
in ``PRIVATE_HOOKS`` are not uvicorn's public API. Importing this module checks that they are
there, and tests/service/test_uvicorn_hooks.py that uvicorn still calls them; no other module of
the service may touch uvicorn's internals. This is where further connection hygiene belongs.

A client that stops sending in the middle of its headers or body would hold its connection
for as long as it likes. Each connection keeps the time of its last read and one timer,
re-armed only when it fires: headers stalled past the timeout get a JSON 408 from the protocol
itself (counted through the app's ``ConnectionPolicy``), as does a stalled body while the app
has not been handed the request; once it has, the protocol sets ``read_stalled`` on the
request's ``CONNECTION`` extension and the app's body guard answers the 408. A new connection
that sends nothing is closed after uvicorn's keep-alive timeout. Time with reading paused by
uvicorn's flow control is the server's wait, not the client's stall.

A request reaches the app once its body is complete (or 64 KiB of it are buffered, or the
client expects ``100 Continue``), as nginx buffers requests: a client trickling its body holds
a parser and a buffer, not a task with the app's frames. Should the client go away or stall
first, the protocol counts the 499 or answers the 408 itself, under the request's route.
"""

import asyncio
import contextlib
import logging
import os
import signal
from http import HTTPStatus
from typing import Any

import uvicorn
from starlette.types import Scope
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import Multiprocess

from service.rest.connection import (
    CONNECTION,
    CONNECTION_POLICY,
    DEFAULT_POLICY,
    HEADERS_STALLED,
    ConnectionPolicy,
)
from service.rest.errors import body_stalled_message, error_body

TESTED_UVICORN = ("0.55.0",)
# uvicorn's internals used here: the methods overridden or called, and the attributes read.
PRIVATE_HOOKS: dict[type, tuple[str, ...]] = {
    HttpToolsProtocol: (
        "_start_asgi_task",
        "on_message_begin",
        "on_headers_complete",
        "on_body",
        "on_message_complete",
        "data_received",
        "connection_made",
        "connection_lost",
    ),
    Multiprocess: ("handle_hup", "handle_signals"),
}


def missing_hooks() -> list[str]:
    """The names of ``PRIVATE_HOOKS`` that this uvicorn lacks."""
    return [
        f"{owner.__name__}.{name}"
        for owner, names in PRIVATE_HOOKS.items()
        for name in names
        if not callable(getattr(owner, name, None))
    ]


if missing_hooks():
    raise ImportError(
        f"uvicorn {uvicorn.__version__} lacks {', '.join(missing_hooks())}, which "
        f"service.rest.uvicorn_hooks relies on (tested with {', '.join(TESTED_UVICORN)})"
    )

# uvicorn's interim response to ``Expect: 100-continue``, written before the response's head.
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# Bodies up to this size are copied behind the head; larger ones are written on their own.
COALESCED_BODY_BYTES = 64 * 1024
REQUEST_TIMEOUT_LINE = b"HTTP/1.1 408 %s\r\n" % HTTPStatus.REQUEST_TIMEOUT.phrase.encode()


class ReadTimeoutProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` with a read timeout on headers and body (see the module's doc).

    Its own state is in slots: the inherited ``__dict__`` is already full, and a few more keys
    would double its size.
    """

    __slots__ = (
        "_deferred",
        "_extensions",
        "_last_read",
        "_policy",
        "_reading_headers",
        "_request_began",
        "_served",
        "_watch",
        "read_stalled",
    )

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        super().connection_made(transport)
        self._policy: ConnectionPolicy = self.app_state.get(CONNECTION_POLICY, DEFAULT_POLICY)
        self.read_stalled = False
        self._extensions = {CONNECTION: self}
        self._last_read = self._request_began = self.loop.time()
        self._reading_headers = False
        self._served = False
        self._deferred = None
        first_check = min(self.timeout_keep_alive, self._policy.read_timeout)
        self._watch = self.loop.call_later(first_check, self._check_stall)

    def connection_lost(self, exc: Exception | None) -> None:
        self._watch.cancel()
        super().connection_lost(exc)
        if self._deferred is not None:  # gone before the app had the request: no app work
            self._deferred = None
            seconds = self.loop.time() - self._request_began
            self._policy.record_refusal(self.scope, 499, "client_closed_request", seconds)
        self._release()

    def _release(self) -> None:
        """Drop the references that make a closed connection a cycle (protocol -> request ->
        protocol), so it is freed at once rather than at the next full garbage collection."""
        self._extensions.clear()
        self.cycle = None  # type: ignore[assignment]
        self.scope = None  # type: ignore[assignment]
        self.pipeline.clear()

    def _start_asgi_task(self, cycle, app) -> None:  # type: ignore[no-untyped-def]
        """Hold a request back from the app until its body is in (see the module's doc)."""
        if cycle.more_body and not cycle.waiting_for_100_continue:
            self._deferred = (cycle, app)
            return
        super()._start_asgi_task(cycle, app)

    def _start_deferred(self) -> None:
        """Hand the held-back request to the app (uvicorn's own start of its task)."""
        deferred = self._deferred
        if deferred is not None:
            self._deferred = None
            super()._start_asgi_task(*deferred)

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        if self.flow.read_paused:  # 64 KiB buffered: the app reads the rest as it streams
            self._start_deferred()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._start_deferred()

    def data_received(self, data: bytes) -> None:
        self._last_read = self.loop.time()
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = self._extensions  # type: ignore[typeddict-unknown-key]
        self._reading_headers = self._served = True
        self._request_began = self._last_read

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        super().on_headers_complete()
        if self.scope["method"] != "HEAD":  # uvicorn writes no body for HEAD: nothing to wait for
            self.cycle.transport = HeadWithBody(self.transport)

    def _waiting_for_body(self) -> bool:
        cycle = self.cycle
        return (
            cycle is not None
            and cycle.more_body
            and not cycle.response_complete
            and not cycle.waiting_for_100_continue
        )

    def _check_stall(self) -> None:
        """The connection's one timer: act on a stall, else sleep until one could be due."""
        if self.transport.is_closing():
            return
        now = self.loop.time()
        if not self._served and now - self._last_read >= self.timeout_keep_alive:
            self.transport.close()  # never sent a byte: as idle as a kept-alive connection
            return
        timeout = self._policy.read_timeout
        if self.flow.read_paused:
            self._last_read = now
        waiting = self._reading_headers or self._waiting_for_body()
        if waiting and now - self._last_read >= timeout:
            self._on_stall(now)
            return
        due = self._last_read + timeout if waiting else now + timeout
        if not self._served:
            due = min(due, self._last_read + self.timeout_keep_alive)
        self._watch = self.loop.call_at(due, self._check_stall)

    def _on_stall(self, now: float) -> None:
        """Answer a stall here while the app has not seen the request, else let the app."""
        seconds = now - self._request_began
        if self._reading_headers:
            self._refuse_stall(None, HEADERS_STALLED, seconds)
        elif self._deferred is not None:
            self._deferred = None
            self._refuse_stall(self.scope, body_stalled_message(len(self.cycle.body)), seconds)
        else:
            self.read_stalled = True
            self.cycle.keep_alive = False
            self.cycle.message_event.set()

    def _refuse_stall(self, scope: Scope | None, message: str, seconds: float) -> None:
        """A JSON 408 written by the protocol itself, counted and logged through the policy."""
        self._policy.record_refusal(scope, 408, "read_timeout", seconds)
        body = error_body(message)
        content = [REQUEST_TIMEOUT_LINE]
        for name, value in self.server_state.default_headers:
            content += [name, b": ", value, b"\r\n"]
        content += [
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
        self.transport.write(b"".join(content))
        self.transport.close()


class HeadWithBody:
    """A request's transport whose response head waits for the first body write and goes out
    with it, in one ``write``: one segment and one wake-up of the client instead of two
    (benchmarks/levers.py, "head and body written apart", measures it). HEAD
    responses, which have no body write, do not get one; a head still held when the transport
    closes goes out first; a large body goes in a write of its own rather than being copied
    behind the head."""

    __slots__ = ("_head", "_head_written", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
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
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> object:
        return getattr(self._transport, name)


class ReloadingWorkers(Multiprocess):
    """uvicorn's worker supervisor, except that SIGHUP goes on to every worker, which reloads
    its models in place (verified, then swapped): uvicorn's own SIGHUP restarts the workers,
    and a retiring worker closes its idle keep-alive connections, which a client sending at
    that instant sees as a dropped request (tests/reliability/test_reload_under_load.py).
    uvicorn has no public seam for it: ``handle_signals`` dispatches to ``handle_hup``."""

    def handle_hup(self) -> None:
        logging.getLogger("service.repository").info(
            "SIGHUP: every worker reloads the model repository"
        )
        for process in self.processes:
            # A worker still starting loads the repository anyway, and has no handler yet: a
            # SIGHUP would end it.
            if process.pid is not None and process.is_ready(timeout=1):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGHUP)


def uvicorn_options() -> dict[str, Any]:
    """The options that make uvicorn serve with this module's protocol."""
    return {"http": f"{__name__}:ReadTimeoutProtocol"}
