"""What every benchmark shares: the model to load, servers on free loopback ports, timing, tables.

The machine is small and shared, so absolute figures drift from run to run; every script
measures a reference in the same run and prints ratios, and prints the run's conditions.
"""

import argparse
import contextlib
import http.client
import io
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
SHIPPED_MODEL = ROOT / "models" / "mnist_mlp.onnx"
DEFAULT_MNIST_DIR = ROOT.parent / "shared" / "data" / "mnist"
STAND_IN_HIDDEN = (512, 128)
READY_PATH = "/v2/health/ready"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model`` and ``--quick``, the same in every script."""
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="ONNX model with its card beside it (default: the shipped models/mnist_mlp.onnx, "
        "or a stand-in MLP 784-512-128-10 with random weights while it is not built)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a tiny run that only proves the script works"
    )


def parser_for(description: str) -> argparse.ArgumentParser:
    """An argument parser that shows every default in ``--help``."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    add_common_arguments(parser)
    return parser


def benchmark_model(requested: Path | None, workdir: Path) -> Path:
    """The model to measure: the one asked for, the shipped one, else a stand-in of its size."""
    if requested is not None:
        return requested.resolve()
    if SHIPPED_MODEL.exists():
        return SHIPPED_MODEL
    from tests.support.models import write_model

    return write_model(workdir, model=_stand_in_mlp())


def _stand_in_mlp():
    """The shipped signature around the cost of the real model: two relu layers, then softmax."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    sizes = (784, *STAND_IN_HIDDEN, 10)
    initializers = [numpy_helper.from_array(np.array([-1, 784], np.int64), "flat_shape")]
    nodes = [
        helper.make_node("Cast", ["image"], ["as_float"], to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["as_float", "flat_shape"], ["layer0"]),
    ]
    for index, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        weights = rng.normal(0.0, 0.05 / 255.0, (fan_in, fan_out)).astype(np.float32)
        initializers.append(numpy_helper.from_array(weights, f"w{index}"))
        nodes.append(helper.make_node("MatMul", [f"layer{index}", f"w{index}"], [f"mm{index}"]))
        if index == len(sizes) - 2:
            nodes.append(helper.make_node("Softmax", [f"mm{index}"], ["probabilities"], axis=1))
        else:
            nodes.append(helper.make_node("Relu", [f"mm{index}"], [f"layer{index + 1}"]))
    graph = helper.make_graph(
        nodes,
        "stand_in_mlp",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["batch", 28, 28])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


@contextlib.contextmanager
def workspace(requested_model: Path | None) -> Iterator[tuple[Path, Path, contextlib.ExitStack]]:
    """A temporary folder, the model to measure, and an exit stack for the servers started."""
    with (
        tempfile.TemporaryDirectory(prefix="mnist-bench-") as work,
        contextlib.ExitStack() as stack,
    ):
        workdir = Path(work)
        yield workdir, benchmark_model(requested_model, workdir), stack


def mnist_dir() -> Path:
    """``MNIST_DIR`` if set, else the shared data folder beside the checkout."""
    return Path(os.environ.get("MNIST_DIR") or DEFAULT_MNIST_DIR).resolve()


def mnist_test_set(count: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The MNIST test images [N, 28, 28] uint8 and labels; a clear exit when they are missing."""
    from tests.support.mnist import load_test_set

    try:
        images, labels = load_test_set(mnist_dir())
    except FileNotFoundError as error:
        raise SystemExit(f"MNIST test files not found ({error}); set MNIST_DIR") from None
    return images[:count], labels[:count]


def png_bytes(pixels: np.ndarray) -> bytes:
    """A lossless PNG of one 28x28 image, as a client uploads it."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def multipart_body(field: str, files: Sequence[bytes]) -> tuple[bytes, str]:
    """A multipart/form-data body with each PNG as a file part; returns body and content type."""
    boundary = "mnistbenchmarkboundary7d1f"
    parts = [
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="{index}.png"\r\nContent-Type: image/png\r\n\r\n'
        ).encode()
        + data
        + b"\r\n"
        for index, data in enumerate(files)
    ]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def one_digit_request() -> tuple[bytes, str]:
    """The first MNIST test digit as a 28x28 PNG in a multipart ``file`` field, and its type."""
    images, _ = mnist_test_set(1)
    return multipart_body("file", [png_bytes(images[0])])


def one_digit_infer_request() -> tuple[bytes, str]:
    """The first MNIST test digit as a V2 JSON inference request (UINT8 [1, 28, 28])."""
    images, _ = mnist_test_set(1)
    tensor = {"name": "image", "shape": [1, 28, 28], "datatype": "UINT8"}
    tensor["data"] = images[0].reshape(-1).tolist()
    return json.dumps({"inputs": [tensor]}).encode(), "application/json"


@dataclass(frozen=True)
class Timing:
    """Wall-clock and process CPU seconds of one call; CPU above wall means helper threads.

    CPU time is what a busy machine distorts least: waiting for a core does not count.
    """

    wall: float
    cpu: float


def time_call(function: Callable[[], object], budget: float, rounds: int = 5) -> Timing:
    """The median round of ``rounds``, each calling ``function`` for ``budget / rounds`` s."""
    function()
    per_round = budget / rounds
    timings = []
    for _ in range(rounds):
        calls, started, cpu_started = 0, time.perf_counter(), time.process_time()
        while True:
            function()
            calls += 1
            elapsed = time.perf_counter() - started
            if elapsed >= per_round:
                break
        timings.append(Timing(elapsed / calls, (time.process_time() - cpu_started) / calls))
    return sorted(timings, key=lambda timing: timing.wall)[(rounds - 1) // 2]


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
) -> Iterator[Server]:
    """Start ``command`` (which must bind ``env['BENCH_PORT']``), wait for 200, stop it after."""
    port = int(env["BENCH_PORT"])
    log_path = log_dir / f"{name.replace(' ', '_')}.{port}.log"
    with log_path.open("wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=log, stderr=log, start_new_session=True
        )
    server = Server(name, process, port, 0.0, log_path)
    try:
        server.ready_seconds = _wait_ready(server, ready_path, started, timeout)
        yield server
    finally:
        _stop(process)


def _wait_ready(server: Server, path: str, started: float, timeout: float) -> float:
    deadline = started + timeout
    while time.perf_counter() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited early:\n{server.log_tail()}")
        if http_status(server.port, path) == 200:
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


def floor_server(model: Path, log_dir: Path) -> contextlib.AbstractContextManager[Server]:
    """The raw ASGI floor of benchmarks/floor_app.py: no framework, no checks, one process."""
    return _app_server("floor", "benchmarks.floor_app:create_app", model, log_dir)


def conditions(model: Path) -> str:
    """One line on what the figures were measured under."""
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"{time.strftime('%Y-%m-%d %H:%M')}; {os.cpu_count()} cores, load average {load}; "
        f"Python {sys.version.split()[0]}, onnxruntime {onnxruntime.__version__}; model {model}"
    )


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A Markdown table, so that a run pastes straight into the README."""
    print(f"\n### {title}\n")
    print("| " + " | ".join(headers) + " |")
    print("| " + " | ".join("---" for _ in headers) + " |")
    for row in rows:
        print("| " + " | ".join(_cell(value) for value in row) + " |")
    sys.stdout.flush()


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def ratio(ours: float, reference: float) -> str:
    """``ours / reference`` as ``1.23x``."""
    return f"{ours / reference:.2f}x" if reference else "n/a"
