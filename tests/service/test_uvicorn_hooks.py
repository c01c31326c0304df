"""service.rest.uvicorn_hooks relies on uvicorn's internals: these tests fail when uvicorn no
longer has them or no longer calls them, rather than the read timeout silently going away."""

import signal
import time
import tomllib
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit

import uvicorn
from packaging.requirements import Requirement
from starlette.types import Receive, Scope, Send

from service.rest import uvicorn_hooks
from service.rest.uvicorn_hooks import ReadTimeoutProtocol, ReloadingWorkers
from tests.support.live_server import RawConnection, live_server, request_head

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_the_installed_uvicorn_is_one_the_hooks_were_tested_with() -> None:
    assert uvicorn.__version__ in uvicorn_hooks.TESTED_UVICORN
    assert uvicorn_hooks.missing_hooks() == []


def test_pyproject_pins_uvicorn_to_the_tested_versions() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    (requirement,) = [
        Requirement(line) for line in dependencies if Requirement(line).name == "uvicorn"
    ]
    for version in uvicorn_hooks.TESTED_UVICORN:
        assert requirement.specifier.contains(version)
    major, minor, _ = uvicorn_hooks.TESTED_UVICORN[-1].split(".")
    assert not requirement.specifier.contains(f"{major}.{int(minor) + 1}.0")


class BodyRecorder:
    """An ASGI app that notes when it is called and answers with the body's length."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self.calls.append(time.monotonic())
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        answer = str(len(body)).encode()
        headers = [(b"content-length", str(len(answer)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})


def test_uvicorn_still_starts_requests_through_the_overridden_hook() -> None:
    """A request whose body is still arriving is held back from the app by the override of
    ``_start_asgi_task``: if uvicorn stopped calling it, the app would be called early."""
    app = BodyRecorder()
    started = mock.patch.object(
        ReadTimeoutProtocol,
        "_start_asgi_task",
        autospec=True,
        side_effect=ReadTimeoutProtocol._start_asgi_task,
    )
    with started as spy, live_server(app, http=ReadTimeoutProtocol, lifespan="off") as url:
        connection = RawConnection(urlsplit(url).port)
        try:
            head = request_head("/", "application/octet-stream", content_length="10")
            connection.send(head + b"12345")
            time.sleep(0.3)
            assert app.calls == []
            connection.send(b"67890")
            assert connection.read_response() == (200, b"10")
        finally:
            connection.close()
    assert spy.call_count >= 1
    assert len(app.calls) == 1


def test_sighup_reaches_the_overridden_supervisor_hook() -> None:
    """uvicorn's supervisor dispatches SIGHUP to ``handle_hup``; ours sends it to the workers."""
    supervisor = ReloadingWorkers.__new__(ReloadingWorkers)
    worker = mock.Mock(pid=12345)
    worker.is_ready.return_value = True
    supervisor.processes = [worker]
    supervisor.signal_queue = [signal.SIGHUP]
    with mock.patch.object(uvicorn_hooks.os, "kill") as kill:
        supervisor.handle_signals()
    kill.assert_called_once_with(12345, signal.SIGHUP)
