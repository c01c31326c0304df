"""What the browser tests need: Debian's chromium (installed on demand) and a live server."""

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

CHROMIUM = Path("/usr/bin/chromium")
# Headless and quiet: nothing here may reach beyond the machine, so no background fetches.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
APT_INSTALL = ["apt-get", "install", "-y", "-o", "DPkg::Lock::Timeout=600", "chromium"]


class ChromiumUnavailable(Exception):
    """Chromium is missing and this process cannot install it; the message says why."""


def ensure_chromium() -> float | None:
    """Install Debian's chromium unless it is there; returns the seconds spent installing, if any.

    Playwright's own browser download needs the internet, so the tests drive the distribution's
    chromium instead, installed with apt-get from the mirror the machine already uses.
    """
    if CHROMIUM.exists():
        return None
    if shutil.which("apt-get") is None:
        raise ChromiumUnavailable(f"{CHROMIUM} is missing and there is no apt-get to install it")
    if os.geteuid() != 0:
        command = " ".join(APT_INSTALL)
        raise ChromiumUnavailable(f"{CHROMIUM} is missing; install it as root: {command}")
    started = time.monotonic()
    if _apt(APT_INSTALL).returncode != 0:
        _apt(["apt-get", "update"])  # the package lists may be missing or stale
        result = _apt(APT_INSTALL)
        if result.returncode != 0:
            reason = result.stderr[-2000:]
            raise ChromiumUnavailable(f"apt-get could not install chromium:\n{reason}")
    if not CHROMIUM.exists():
        raise ChromiumUnavailable(f"apt-get installed chromium but {CHROMIUM} is still missing")
    return time.monotonic() - started


def _apt(command: list[str]) -> subprocess.CompletedProcess[str]:
    environment = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(command, capture_output=True, text=True, env=environment, check=False)


@contextmanager
def live_server(app: ASGIApp, start_timeout: float = 60.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 in a background thread; yields its base URL.

    The socket is bound here, on a port the kernel picks, so the URL is known before the server
    starts and no other process can take the port in between.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
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
