"""Everything that touches uvicorn's internals: the HTTP protocol with the read timeout uvicorn
lacks (``MNIST_READ_TIMEOUT``), and the worker supervisor whose SIGHUP reloads in place.

Tested with uvicorn 0.55.0 (``TESTED_UVICORN``), and pinned to it in pyproject.toml: the names
in ``PRIVATE_HOOKS`` are not uvicorn's public API. Importing this module checks that they are
there, and tests/service/test_uvicorn_hooks.py that uvicorn still calls them; no other module of
the service may touch uvicorn's internals. This is where further connection hygiene belongs.

The read timeout, header bounds and lingering close are described in
``service.rest.connection``, where their policy and pure parts live.
"""

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
    INVALID_REQUEST,
    ConnectionPolicy,
    HeadTooLarge,
    Lingering,
    declares_too_much,
    head_refusal,
    head_size_refusal,
    protocol_answer,
)
from service.rest.errors import body_stalled_message
from service.rest.response_writes import HeadWithBody

TESTED_UVICORN = ("0.55.0",)
# uvicorn's internals used here: the methods overridden or called, and the attributes read.
PRIVATE_HOOKS: dict[type, tuple[str, ...]] = {
    HttpToolsProtocol: (
        "_start_asgi_task",
        "on_message_begin",
        "on_headers_complete",
        "on_response_complete",
        "send_400_response",
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


class ReadTimeoutProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` with the bounds of ``service.rest.connection``. Its own state is in
    slots: the inherited ``__dict__`` is already full, and more keys would double its size."""

    __slots__ = (
        "_deferred",
        "_extensions",
        "_head_received",
        "_last_read",
        "_lingering",
        "_oversized",
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
        self._reading_headers = self._served = False
        self._deferred = None
        self._head_received = 0
        self._oversized: str | None = None
        self._lingering: Lingering | None = None
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
        """Hold a request back until its body is in, unless its length alone is a 413 to answer."""
        too_much = declares_too_much(self.scope["headers"], self._policy)
        if cycle.more_body and not cycle.waiting_for_100_continue and not too_much:
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
        if self._lingering is not None:
            if self._lingering.discard(len(data), self._last_read):
                self.transport.close()
            return
        super().data_received(data)
        if self._reading_headers and not self.transport.is_closing():  # bounded as they come
            self._head_received += len(data)
            if self._head_received > self._policy.max_header_bytes:
                self._refuse_head(head_size_refusal(self._policy))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = self._extensions  # type: ignore[typeddict-unknown-key]
        self._reading_headers = self._served = True
        self._request_began = self._last_read
        self._head_received = 0

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request its parser refused, as JSON (431: headers too large)."""
        if self._oversized is not None:
            self._refuse_head(self._oversized)
        else:
            self._refuse(HTTPStatus.BAD_REQUEST, "bad_http", INVALID_REQUEST)

    def _refuse_head(self, message: str) -> None:
        self._refuse(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large", message)

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        # Bound the request line and headers (nginx: 4 buffers of 8 KiB): a 431 past them.
        self._oversized = head_refusal(self.url, self.headers, self._policy)
        if self._oversized is not None:
            raise HeadTooLarge(self._oversized)  # the parser stops; send_400_response answers
        super().on_headers_complete()
        if self.scope["method"] != "HEAD":  # uvicorn writes no body for HEAD: nothing to wait for
            self.cycle.transport = HeadWithBody(self.transport, self._close_after_response)

    def _body_unread(self) -> bool:
        return self.cycle is not None and self.cycle.more_body and not self.cycle.disconnected

    def _close_after_response(self) -> None:
        """uvicorn's close after a response: first linger over a body answered before it was in."""
        if self._body_unread() and not self.read_stalled:
            self._linger()
        else:
            self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # arms uvicorn's keep-alive timer: lingering has its own
        if self._body_unread() and not self.transport.is_closing():
            self._linger()
        if self._lingering is not None and self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None

    def _linger(self) -> None:
        """Read and discard the rest of a body answered early, then close (``Lingering``)."""
        if self._lingering is not None:
            return
        self._lingering = Lingering(self._policy, self.loop.time())
        self.flow.resume_reading()
        if self.transport.can_write_eof():
            self.transport.write_eof()  # the answer is complete: the client reads it to its end
        self._watch.cancel()
        self._watch = self.loop.call_later(self._policy.linger_timeout, self._check_stall)

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
        if self._lingering is not None:
            left = self._lingering.seconds_left(now)
            if left == 0.0:
                self.transport.close()
            else:
                self._watch = self.loop.call_later(left, self._check_stall)
            return
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
        timeout = HTTPStatus.REQUEST_TIMEOUT
        if self._reading_headers:
            self._refuse(timeout, "read_timeout", HEADERS_STALLED)
        elif self._deferred is not None:
            self._deferred = None
            stalled = body_stalled_message(len(self.cycle.body))
            self._refuse(timeout, "read_timeout", stalled, self.scope)
        else:
            self.read_stalled = True
            self.cycle.keep_alive = False
            self.cycle.message_event.set()

    def _refuse(self, code: HTTPStatus, reason: str, text: str, scope: Scope | None = None) -> None:
        """A JSON answer the protocol writes itself, counted through the policy; then close."""
        seconds = self.loop.time() - self._request_began
        self._policy.record_refusal(scope, code, reason, seconds)
        self.transport.write(protocol_answer(code, text, self.server_state.default_headers))
        self.transport.close()


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
