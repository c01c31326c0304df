"""HTTP load with wrk (Debian's ``wrk``): a prebuilt body POSTed over N keep-alive connections.

wrk is a C event loop: one wrk thread drives thousands of requests a second while leaving the
second core to the server, which a Python load generator could not.
"""

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from benchmarks.servers import HOST, Server

LUA_SCRIPT = Path(__file__).resolve().parent / "post_body.lua"
INSTALL_HINT = "wrk is not installed: run `apt-get install -y wrk` (Debian), or pass --install-wrk"


@dataclass(frozen=True)
class Load:
    """What to send: the body file, its content type, the path, for how long and how wide."""

    body_file: Path
    content_type: str
    path: str
    seconds: float
    connections: int


@dataclass(frozen=True)
class LoadResult:
    """wrk's figures plus the server's CPU time per request, measured around the run."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_cpu_ms: float

    def row(self) -> list[object]:
        """The cells under ``RESULT_HEADERS``."""
        cpu = f"{self.server_cpu_ms:.3f}"
        return [
            self.requests_per_second,
            f"{self.p50_ms:.2f}",
            f"{self.p99_ms:.2f}",
            self.errors,
            cpu,
        ]


RESULT_HEADERS = ["req/s", "p50 ms", "p99 ms", "errors", "server CPU ms/req"]


def ensure_wrk(install: bool) -> str:
    """The wrk binary; with ``install`` it is installed with apt-get when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    if not install:
        raise SystemExit(INSTALL_HINT)
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit(INSTALL_HINT)
    return found


def run_wrk(wrk: str, server: Server, load: Load) -> LoadResult:
    """One wrk run of ``load`` against ``server``; non-2xx answers count as errors."""
    command = [
        wrk,
        "-t1",
        f"-c{load.connections}",
        f"-d{max(1, round(load.seconds))}s",
        "--timeout",
        "5s",
        "-s",
        str(LUA_SCRIPT),
        f"http://{HOST}:{server.port}{load.path}",
    ]
    env = dict(os.environ, WRK_BODY_FILE=str(load.body_file), WRK_CONTENT_TYPE=load.content_type)
    cpu_before = server.cpu_seconds()
    output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    cpu_seconds = server.cpu_seconds() - cpu_before
    line = next((text for text in output.splitlines() if text.startswith("WRK_RESULT")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{output}")
    requests, duration_us, p50_us, p99_us, socket_errors, status_errors = map(int, line.split()[1:])
    return LoadResult(
        requests_per_second=requests / (duration_us / 1e6),
        p50_ms=p50_us / 1000.0,
        p99_ms=p99_us / 1000.0,
        errors=socket_errors + status_errors,
        server_cpu_ms=1000.0 * cpu_seconds / max(requests, 1),
    )


def warm_up(wrk: str, server: Server, load: Load) -> None:
    """One second of load first, so lazily built state is not in the measured run."""
    run_wrk(wrk, server, Load(load.body_file, load.content_type, load.path, 1, load.connections))
