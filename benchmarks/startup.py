"""Start-up to ready, and resident memory per process after load.

Run: ``python -m benchmarks.startup`` (about 30 s). "Ready" is from the process start
(``python -m service``) to the first 200 from ``/v2/health/ready``. Memory is read from
/proc/PID/smaps_rollup after 10,000 images went through ``/predict`` and V2: RSS counts
shared libraries in full in every process; PSS shares them out, so PSS adds up across workers.
"""

import http.client
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.bulk import Mode, decode_binary, encode_binary, one_pass
from benchmarks.data import mnist_test_set, one_digit_request
from benchmarks.report import conditions, print_table
from benchmarks.run import parser_for, workspace
from benchmarks.servers import HOST, Server, memory_mb, service_server


def _parse(argv: list[str] | None):
    parser = parser_for(__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=5, help="start-ups per worker count")
    parser.add_argument("--requests", type=int, default=2000, help="/predict requests of load")
    return parser.parse_args(argv)


LOAD_CODE = """
import sys, time
from pathlib import Path
from service.inference.classifier import Classifier
started = time.perf_counter()
Classifier.from_files(Path(sys.argv[1]), Path(sys.argv[1]).with_suffix(".json"))
print(time.perf_counter() - started)
"""


def _python_seconds(code: str, *arguments: str) -> float:
    """Wall time of a fresh interpreter running ``code``: what imports cost at start-up."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, *arguments], check=True, stdout=subprocess.PIPE)
    return time.perf_counter() - started


def _load_seconds(model: Path) -> float:
    """Seconds ``Classifier.load`` takes in a fresh interpreter, imports excluded."""
    command = [sys.executable, "-c", LOAD_CODE, str(model)]
    return float(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def breakdown_rows(model: Path, runs: int) -> list:
    """Where start-up time goes, median of ``runs`` fresh interpreters for each step."""
    steps = {
        "python -c pass": lambda: _python_seconds("pass"),
        "python -c 'import service.rest.app, uvicorn'": lambda: _python_seconds(
            "import service.rest.app, uvicorn"
        ),
        "Classifier.load (read, check, session, warm-up)": lambda: _load_seconds(model),
    }
    return [
        [name, f"{statistics.median(step() for _ in range(runs)):.3f}"]
        for name, step in steps.items()
    ]


def ready_row(model: Path, workdir: Path, workers: int, runs: int) -> list:
    """Median, best and worst seconds from process start to ready over ``runs`` start-ups."""
    seconds = []
    for _ in range(runs):
        with service_server(model, workdir, workers) as server:
            seconds.append(server.ready_seconds)
    return [
        workers,
        f"{statistics.median(seconds):.3f}",
        f"{min(seconds):.3f}",
        f"{max(seconds):.3f}",
    ]


def apply_load(server: Server, model: Path, requests: int) -> None:
    """``/predict`` one PNG at a time on several connections, then the test set through V2."""
    images, _ = mnist_test_set()
    body, content_type = one_digit_request()
    connections = [http.client.HTTPConnection(HOST, server.port, timeout=30) for _ in range(4)]
    for index in range(requests):
        connection = connections[index % len(connections)]
        connection.request("POST", "/predict", body=body, headers={"Content-Type": content_type})
        connection.getresponse().read()
    for connection in connections:
        connection.close()
    binary = Mode("V2 binary", "/v2/models/mnist_mlp/infer", encode_binary, decode_binary)
    try:
        one_pass(server.port, binary, images, 4096)
    except RuntimeError as error:
        print(f"(V2 load skipped: {error})", file=sys.stderr)


def memory_rows(model: Path, workdir: Path, workers: int, requests: int) -> list:
    """RSS and PSS of each process of a server with ``workers`` workers, after load."""
    with service_server(model, workdir, workers) as server:
        apply_load(server, model, requests)
        rows = []
        for pid in server.processes():
            rss, pss = memory_mb(pid)
            rows.append([workers, _role(server, pid), str(pid), f"{rss:.1f}", f"{pss:.1f}"])
    return rows


def _role(server: Server, pid: int) -> str:
    """What a process of the server is, from its command line."""
    command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    if b"resource_tracker" in command:
        return "multiprocessing resource tracker"
    if pid != server.process.pid:
        return "worker"
    return "worker (the only process)" if len(server.processes()) == 1 else "supervisor"


def main(argv: list[str] | None = None) -> int:
    """Measure start-up and memory for each worker count, print three tables."""
    arguments = _parse(argv)
    if arguments.quick:
        arguments.workers, arguments.runs, arguments.requests = [1], 1, 20
    with workspace(arguments.model) as (workdir, model, _):
        ready = [ready_row(model, workdir, count, arguments.runs) for count in arguments.workers]
        memory = [
            row
            for count in arguments.workers
            for row in memory_rows(model, workdir, count, arguments.requests)
        ]
        steps = breakdown_rows(model, arguments.runs)
    print(f"Conditions: {conditions(model)}")
    print_table(
        f"Process start to /v2/health/ready 200, {arguments.runs} start-ups",
        ["workers", "median s", "best s", "worst s"],
        ready,
    )
    print_table("Memory after load", ["workers", "process", "pid", "RSS MB", "PSS MB"], memory)
    print_table("Where start-up time goes (one process)", ["step", "seconds"], steps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
