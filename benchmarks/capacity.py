"""Capacity of one worker and one pod: req/s, CPU cores and memory, and pods for a target rate.

Run: ``python -m benchmarks.capacity`` (about a minute). Each server runs exactly as shipped
(``python -m service``); wrk POSTs one 28x28 PNG to ``/predict`` for ``--seconds`` at each
connection count. CPU is the server processes' user + system time over the run divided by its
wall time (cores busy); memory is the peak resident set (VmHWM) of each process after the
/predict runs and after ``--bulk-requests`` V2 binary requests of the largest batch
(``MNIST_MAX_BATCH_SIZE``), the worst a worker holds for one request. These are the figures the
Deployment's requests and limits and the README's capacity plan come from.
"""

import http.client
import math
from pathlib import Path

import numpy as np

from benchmarks.bulk import encode_binary
from benchmarks.http_predict import single_image_body
from benchmarks.load import Load, LoadResult, ensure_wrk, run_wrk, warm_up
from benchmarks.report import conditions, print_table
from benchmarks.run import parser_for, workspace
from benchmarks.servers import HOST, Server, memory_mb, service_server

TARGETS = (1_000, 10_000, 100_000)
LARGEST_BATCH = 16_384


def _parse(argv: list[str] | None):
    parser = parser_for(__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="workers per pod")
    parser.add_argument("--connections", type=int, nargs="+", default=[8, 64])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each wrk run")
    parser.add_argument("--bulk-requests", type=int, default=5, help="V2 requests of 16,384")
    parser.add_argument(
        "--hpa-target", type=float, default=0.7, help="HPA CPU utilisation target (of requests)"
    )
    parser.add_argument("--install-wrk", action="store_true", help="apt-get install wrk if missing")
    return parser.parse_args(argv)


def peak_rss_mb(pid: int) -> float:
    """The highest resident set the process ever had (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return float(line.split()[1]) / 1024.0
    return 0.0


def _bulk_requests(server: Server, count: int) -> None:
    """V2 binary requests of the largest batch a worker accepts, one at a time."""
    images = np.random.default_rng(0).integers(0, 256, (LARGEST_BATCH, 28, 28), dtype=np.uint8)
    body, headers = encode_binary(images)
    for _ in range(count):
        connection = http.client.HTTPConnection(HOST, server.port, timeout=60)
        connection.request("POST", "/v2/models/mnist_mlp/infer", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        connection.close()
        if response.status != 200:
            raise RuntimeError(f"bulk request answered {response.status}")


def _load_row(wrk: str, server: Server, load: Load) -> tuple[LoadResult, float]:
    warm_up(wrk, server, load)
    cpu_before = server.cpu_seconds()
    result = run_wrk(wrk, server, load)
    cores = (server.cpu_seconds() - cpu_before) / max(1, round(load.seconds))
    return result, cores


def _memory(server: Server) -> tuple[float, float, float]:
    """Sum over the server's processes of RSS, PSS and peak RSS, in MB (the uvicorn master of a
    multi-worker server included: it is part of the pod)."""
    pids = server.processes()
    current = [memory_mb(pid) for pid in pids]
    return (
        sum(rss for rss, _ in current),
        sum(pss for _, pss in current),
        sum(peak_rss_mb(pid) for pid in pids),
    )


def _measure_pod(wrk: str, model: Path, workdir: Path, workers: int, arguments) -> list[list]:
    body_file, content_type = single_image_body(workdir)
    rows = []
    with service_server(model, workdir, workers, name=f"pod {workers}") as server:
        idle_rss, idle_pss, _ = _memory(server)
        for connections in arguments.connections:
            load = Load(body_file, content_type, "/predict", arguments.seconds, connections)
            result, cores = _load_row(wrk, server, load)
            rows.append([workers, connections, result.requests_per_second, result.p99_ms, cores])
        predict_peak = _memory(server)[2]
        _bulk_requests(server, arguments.bulk_requests)
        _, _, bulk_peak = _memory(server)
    memory = [f"{idle_rss:.0f} / {idle_pss:.0f}", f"{predict_peak:.0f}", f"{bulk_peak:.0f}"]
    return [[*row[:3], f"{row[3]:.1f}", f"{row[4]:.2f}", *memory] for row in rows]


def pods_needed(target: float, pod_requests_per_second: float, hpa_target: float) -> int:
    """Pods so that the target rate keeps each pod at the HPA's utilisation target."""
    if pod_requests_per_second <= 0 or not 0 < hpa_target <= 1:
        raise ValueError("the pod rate must be positive and the HPA target in (0, 1]")
    return math.ceil(target / (pod_requests_per_second * hpa_target))


def main(argv: list[str] | None = None) -> int:
    """Measure each pod size, then print the capacity plan for the best rate of each."""
    arguments = _parse(argv)
    wrk = ensure_wrk(arguments.install_wrk)
    if arguments.quick:
        arguments.workers, arguments.connections, arguments.seconds = [1], [8], 1.0
        arguments.bulk_requests = 1
    with workspace(arguments.model) as (workdir, model, _):
        print(f"Conditions: {conditions(model)}; wrk 1 thread, {arguments.seconds:.0f} s per run")
        rows = []
        for workers in arguments.workers:
            rows.extend(_measure_pod(wrk, model, workdir, workers, arguments))
    headers = ["workers", "connections", "req/s", "p99 ms", "CPU cores busy"]
    headers += ["idle RSS / PSS MB", "peak RSS MB, /predict", "peak RSS MB, + V2 16,384"]
    print_table("One pod, POST /predict with one 28x28 PNG", headers, rows)
    plan = []
    for workers in arguments.workers:
        best = max(row[2] for row in rows if row[0] == workers)
        needed = [pods_needed(target, best, arguments.hpa_target) for target in TARGETS]
        plan.append([workers, best, *needed])
    target_headers = [f"pods for {target:,} req/s" for target in TARGETS]
    title = f"Pods at the HPA target of {arguments.hpa_target:.0%} CPU"
    print_table(title, ["workers per pod", "best req/s", *target_headers], plan)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
