"""Live servers on 127.0.0.1: ``python -m service`` as a real process, for what only a live
server shows (signals, worker processes, sockets, bodies that arrive slowly or never end), and
an app served by uvicorn in a thread of the test process (browsers, real HTTP clients).
"""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn
from starlette.types import ASGIApp

from tests.support.ports import bound_listener, free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 60.0
WORKER_STARTED = re.compile(r"Started server process \[(\d+)\]")


class LiveService:
    """A running ``python -m service``; its stderr is collected line by line as it is written.

    ``model_path`` is one ONNX file (``MNIST_MODEL_PATH``) or a repository folder
    (``MNIST_MODEL_REPOSITORY``). Only the settings given here apply: ``MNIST_*`` variables of
    the caller's shell are dropped.
    """

    def __init__(self, model_path: Path, **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.grpc_port = free_port()
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"
        inherited = {
            name: value for name, value in os.environ.items() if not name.startswith("MNIST_")
        }
        environment = {
            **inherited,
            ("MNIST_MODEL_REPOSITORY" if model_path.is_dir() else "MNIST_MODEL_PATH"): str(
                model_path
            ),
            "MNIST_HOST": "127.0.0.1",
            "MNIST_PORT": str(self.port),
            "MNIST_GRPC_PORT": str(self.grpc_port),
            "MNIST_ACCESS_LOG": "false",
            **{f"MNIST_{name.upper()}": value for name, value in settings.items()},
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service"],
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log: list[str] = []
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line.rstrip("\n"))

    def wait_until_ready(self, workers: int = 1) -> None:
        """Poll readiness until every worker has started, or fail with the process's log."""
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited early:\n{self.log_text()}")
            if len(self.worker_pids()) >= workers and self._answers_ready():
                return
            time.sleep(0.05)
        raise TimeoutError(f"the service was not ready in time:\n{self.log_text()}")

    def wait_for_log(self, text: str) -> None:
        """Wait until the service logs ``text``: a state it has reached, such as shutting down."""
        deadline = time.monotonic() + STARTUP_SECONDS
        while text not in self.log_text():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise TimeoutError(f"the service never logged {text!r}:\n{self.log_text()}")
            time.sleep(0.05)

    def _answers_ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/v2/health/ready", timeout=2.0).status_code == 200
        except httpx.TransportError:
            return False

    def worker_pids(self) -> list[int]:
        """Every server process started so far, in order (the main one when workers is 1)."""
        return [int(match[1]) for line in self.log if (match := WORKER_STARTED.search(line))]

    def log_text(self) -> str:
        return "\n".join(self.log)

    def connect(self) -> "RawConnection":
        return RawConnection(self.port)

    def stop(self) -> int:
        """SIGTERM, then the exit code; SIGKILL only if it does not stop in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30.0)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=5.0)
        return self.process.returncode


@contextmanager
def live_service(model_path: Path, workers: int = 1, **settings: str) -> Iterator[LiveService]:
    """A ready service for the ``with`` block, stopped afterwards whatever happens."""
    service = LiveService(model_path, workers=str(workers), **settings)
    try:
        service.wait_until_ready(workers)
        yield service
    finally:
        service.stop()


class RawConnection:
    """HTTP/1.1 on a bare socket: sends exactly the bytes given, so requests can be cut short."""

    def __init__(self, port: int) -> None:
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=30.0)
        self._buffer = b""

    def send(self, data: bytes) -> None:
        self.socket.sendall(data)

    def read_response(self) -> tuple[int, bytes]:
        """Status and body of the next response (an interim ``100 Continue`` counts as one)."""
        head = self._read_until(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        return status, self._read_exactly(int(length[1]) if length else 0)

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self._buffer:
            self._receive()
        head, self._buffer = self._buffer.split(marker, 1)
        return head

    def _read_exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._receive()
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _receive(self) -> None:
        chunk = self.socket.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection before a full response")
        self._buffer += chunk

    def close(self) -> None:
        self.socket.close()


def start_upload(service: LiveService, image: bytes) -> RawConnection:
    """A /predict whose body is held back until the server asks for it with 100 Continue.

    The interim response proves the request is inside the app, reading its body: in flight.
    """
    connection = service.connect()
    connection.send(
        request_head("/predict", "image/png", content_length=str(len(image)), expect="100-continue")
    )
    status, _ = connection.read_response()
    assert status == 100
    return connection


def request_head(path: str, content_type: str, **headers: str) -> bytes:
    """The request line and headers of a POST, ``headers`` given with ``_`` for ``-``."""
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Type: {content_type}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@contextmanager
def live_server(app: ASGIApp, start_timeout: float = 60.0, **options: object) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 in a background thread; yields its base URL.
    ``options`` go to ``uvicorn.Config`` (``http``: the protocol class, for one).

    The socket is bound here, on a port the kernel picks, so the URL is known before the server
    starts and no other process can take the port in between.
    """
    listener, port = bound_listener()
    config = uvicorn.Config(app, **({"log_level": "warning", "lifespan": "on"} | options))
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name="live-server", daemon=True
    )
    thread.start()
    try:
        _wait_until_started(server, thread, start_timeout)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


def _wait_until_started(server: uvicorn.Server, thread: threading.Thread, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the live server stopped during startup; see the log above")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the live server did not start within {timeout:.0f} s")
        time.sleep(0.02)
