"""Servers on free loopback ports, started and stopped by the benchmarks: the service as
shipped, bare FastAPI, the raw-ASGI floor and the gRPC floor, with their CPU time and memory
from /proc.
"""

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import onnxruntime

from benchmarks.data import ROOT

HOST = "127.0.0.1"

READY_PATH = "/v2/health/ready"

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def service_session_options(threads: int = 1) -> onnxruntime.SessionOptions:
    """The service's onnxruntime options (see service/classifier.py), for the reference server."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    import socket

    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@dataclass(eq=False)
class Server:
    """A server process the benchmark started, on ``HOST:port``."""

    name: str
    process: subprocess.Popen
    port: int
    ready_seconds: float
    log_path: Path

    def processes(self) -> list[int]:
        """The server's process and all its descendants (uvicorn's workers)."""
        found, pending = [], [self.process.pid]
        while pending:
            pid = pending.pop()
            found.append(pid)
            pending.extend(_children(pid))
        return found

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the server's processes so far."""
        return sum(_cpu_seconds(pid) for pid in self.processes())

    def log_tail(self, lines: int = 20) -> str:
        """The end of the server's output, for the error when it fails to start."""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def _children(pid: int) -> list[int]:
    children: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            children.extend(int(child) for child in (task / "children").read_text().split())
    return children


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory_mb(pid: int) -> tuple[float, float]:
    """Resident and proportional set size (RSS, PSS) of one process, in MB."""
    rss = pss = 0.0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("Rss", "Pss"):
            kilobytes = float(value.split()[0]) / 1024.0
            rss, pss = (kilobytes, pss) if name == "Rss" else (rss, kilobytes)
    return rss, pss


def http_status(port: int, path: str, timeout: float = 0.5) -> int | None:
    """The status of ``GET path``, or None when nothing answers yet."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


@contextlib.contextmanager
def running_server(
    name: str,
    command: list[str],
    env: dict[str, str],
    log_dir: Path,
    ready_path: str = READY_PATH,
    timeout: float = 60.0,
    ready: Callable[[int], bool] | None = None,
) -> Iterator[Server]:
    """Start ``command`` (which must bind ``env['BENCH_PORT']``), wait until it is ready (200 on
    ``ready_path``, or ``ready(port)`` true), stop it after."""
    port = int(env["BENCH_PORT"])
    log_path = log_dir / f"{name.replace(' ', '_')}.{port}.log"
    with log_path.open("wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=log, stderr=log, start_new_session=True
        )
    server = Server(name, process, port, 0.0, log_path)
    try:
        is_ready = ready or (lambda port: http_status(port, ready_path) == 200)
        server.ready_seconds = _wait_ready(server, is_ready, started, timeout)
        yield server
    finally:
        _stop(process)


def _wait_ready(
    server: Server, is_ready: Callable[[int], bool], started: float, timeout: float
) -> float:
    deadline = started + timeout
    while time.perf_counter() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited early:\n{server.log_tail()}")
        if is_ready(server.port):
            return time.perf_counter() - started
        time.sleep(0.002)
    raise RuntimeError(f"{server.name} not ready after {timeout} s:\n{server.log_tail()}")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM lets uvicorn stop its workers; the group is killed if it does not within 10 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def server_env(port: int, **variables: str) -> dict[str, str]:
    """This environment plus the port and the given variables, with the checkout importable.

    The service also serves gRPC, on 8001 unless told otherwise: each server gets a free port
    for it, so that two runs (or a run beside a real server) never fight over 8001.
    """
    variables.setdefault("MNIST_GRPC_PORT", str(free_port()))
    env = dict(os.environ, BENCH_PORT=str(port), PYTHONPATH=str(ROOT), **variables)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def service_server(
    model: Path, log_dir: Path, workers: int = 1, name: str = "service", **variables: str
) -> contextlib.AbstractContextManager[Server]:
    """``python -m service`` exactly as shipped, configured only through ``MNIST_*`` variables."""
    port = free_port()
    env = server_env(
        port,
        MNIST_HOST=HOST,
        MNIST_PORT=str(port),
        MNIST_MODEL_PATH=str(model),
        MNIST_WORKERS=str(workers),
        **variables,
    )
    return running_server(name, [sys.executable, "-m", "service"], env, log_dir)


def _app_server(name: str, factory: str, model: Path, log_dir: Path):
    """``uvicorn factory --factory`` on a free port, with the model path in ``BENCH_MODEL_PATH``
    and uvicorn's defaults otherwise (uvloop and httptools when installed, as the service)."""
    port = free_port()
    env = server_env(port, BENCH_MODEL_PATH=str(model))
    command = [sys.executable, "-m", "uvicorn", factory, "--factory", "--host", HOST]
    command += ["--port", str(port), "--log-level", "info", "--no-access-log"]
    return running_server(name, command, env, log_dir, ready_path="/health")


def reference_server(model: Path, log_dir: Path) -> contextlib.AbstractContextManager[Server]:
    """The bare FastAPI + onnxruntime endpoint of benchmarks/reference_app.py, one process."""
    return _app_server("reference", "benchmarks.reference_app:create_app", model, log_dir)


def stack_floor_server(model: Path, log_dir: Path) -> contextlib.AbstractContextManager[Server]:
    """The floor's job inside FastAPI's middleware stack and router
    (benchmarks/stack_floor_app.py), one process."""
    return _app_server("FastAPI floor", "benchmarks.stack_floor_app:create_app", model, log_dir)


def grpc_listening(port: int, timeout: float = 0.5) -> bool:
    """Whether a gRPC server accepts a channel on ``port`` within ``timeout`` seconds."""
    with grpc.insecure_channel(f"{HOST}:{port}") as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            return False
    return True


def grpc_floor_server(model: Path, log_dir: Path) -> contextlib.AbstractContextManager[Server]:
    """The gRPC floor of benchmarks/grpc_floor_app.py: ModelInfer with no checks, one process."""
    port = free_port()
    env = server_env(port, BENCH_MODEL_PATH=str(model))
    command = [sys.executable, "-m", "benchmarks.grpc_floor_app"]
    return running_server("gRPC floor", command, env, log_dir, ready=grpc_listening)


def floor_server(model: Path, log_dir: Path) -> contextlib.AbstractContextManager[Server]:
    """The raw ASGI floor of benchmarks/floor_app.py: no framework, no checks, one process."""
    return _app_server("floor", "benchmarks.floor_app:create_app", model, log_dir)
