"""Each performance lever of issue 5 moved on its own, against the service as shipped, with wrk.

Run: ``python -m benchmarks.levers`` (about 5 minutes). Every variant
(benchmarks/variants.py) runs side by side and is loaded in turn, round after round; each figure
is the best round. "server CPU ms/req" is the steadiest figure on a busy machine: it counts the
server's own CPU time, whatever else runs.
"""

import sys
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.http_predict import infer_body, single_image_body
from benchmarks.load import RESULT_HEADERS, Load, LoadResult, ensure_wrk, run_wrk, warm_up
from benchmarks.report import conditions, print_table, ratio
from benchmarks.run import parser_for, workspace
from benchmarks.servers import HOST, free_port, running_server, server_env


@dataclass(frozen=True)
class Lever:
    """A variant of benchmarks/variants.py plus ``MNIST_*`` variables."""

    name: str
    variant: str = "shipped"
    env: dict[str, str] = field(default_factory=dict)


ROUTES = {"predict": "/predict", "infer": "/v2/models/mnist_mlp/infer"}
LEVERS = (
    Lever("shipped"),
    Lever("uvloop + httptools named", "uvloop+httptools"),
    Lever("asyncio + h11", "asyncio+h11"),
    Lever("no read timeout (uvicorn's protocol)", "uvicorn's own httptools protocol"),
    Lever("gRPC off", env={"MNIST_GRPC_ENABLED": "false"}),
    Lever("access log off", env={"MNIST_ACCESS_LOG": "false"}),
    Lever("access log written on the event loop", "access log written on the event loop"),
    Lever("no metrics", "no metrics"),
    Lever("decode in thread pool", "decode in thread pool"),
    Lever("streaming multipart", "streaming multipart"),
    Lever("onnxruntime default options", "onnxruntime defaults"),
    Lever("onnxruntime 0 threads, no spin", env={"MNIST_INTRA_OP_THREADS": "0"}),
    Lever("2 workers", env={"MNIST_WORKERS": "2"}),
    Lever("dynamic batching off", env={"MNIST_DYNAMIC_BATCHING": "false"}),
    Lever("garbage collector as CPython's", "garbage collector as CPython's"),
    Lever("head and body written apart", "head and body written apart"),
)


def _parse(argv: list[str] | None):
    parser = parser_for(__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, nargs="+", default=[64, 1])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=2, help="runs per lever; the best counts")
    parser.add_argument(
        "--only", nargs="+", default=None, help="lever names to run (shipped always runs)"
    )
    parser.add_argument(
        "--route",
        choices=sorted(ROUTES),
        default="predict",
        help="predict: one 28x28 PNG; infer: one V2 JSON tensor to /v2/models/mnist_mlp/infer",
    )
    parser.add_argument("--install-wrk", action="store_true", help="apt-get install wrk if missing")
    return parser.parse_args(argv)


def lever_server(lever: Lever, model: Path, log_dir: Path):
    """``python -m benchmarks.variants`` for the lever, configured like ``python -m service``."""
    port = free_port()
    variables = {"MNIST_MODEL_PATH": str(model), "MNIST_HOST": HOST, "MNIST_PORT": str(port)}
    env = server_env(port, **(variables | lever.env))
    command = [sys.executable, "-m", "benchmarks.variants", lever.variant]
    return running_server(lever.name, command, env, log_dir)


def _best(results: list[LoadResult]) -> LoadResult:
    return max(results, key=lambda result: result.requests_per_second)


def _rows(servers: dict, wrk: str, body: tuple[Path, str], arguments) -> list:
    rows = []
    for connections in arguments.connections:
        load = Load(*body, ROUTES[arguments.route], arguments.seconds, connections)
        results: dict[str, list[LoadResult]] = {name: [] for name in servers}
        for _ in range(arguments.rounds):
            for name, server in servers.items():
                if not arguments.quick:
                    warm_up(wrk, server, load)
                results[name].append(run_wrk(wrk, server, load))
        shipped = _best(results["shipped"])
        for name, runs in results.items():
            best = _best(runs)
            speed = ratio(best.requests_per_second, shipped.requests_per_second)
            cpu = ratio(best.server_cpu_ms, shipped.server_cpu_ms)
            rows.append([name, connections, *best.row(), speed, cpu])
    return rows


def main(argv: list[str] | None = None) -> int:
    """Start every lever's server, load them in turn, print one table."""
    arguments = _parse(argv)
    wrk = ensure_wrk(arguments.install_wrk)
    levers = [lever for lever in LEVERS if not arguments.only or lever.name in arguments.only]
    if arguments.quick:
        levers, arguments.connections, arguments.seconds, arguments.rounds = LEVERS[:1], [1], 1, 1
    levers = [LEVERS[0], *(lever for lever in levers if lever is not LEVERS[0])]
    with workspace(arguments.model) as (workdir, model, stack):
        body = (single_image_body if arguments.route == "predict" else infer_body)(workdir)
        servers = {
            lever.name: stack.enter_context(lever_server(lever, model, workdir)) for lever in levers
        }
        rows = _rows(servers, wrk, body, arguments)
    print(
        f"Conditions: {conditions(model)}; wrk 1 thread, {arguments.seconds:.0f} s per run, "
        f"best of {arguments.rounds} rounds"
    )
    header = ["lever", "connections", *RESULT_HEADERS, "req/s vs shipped", "CPU/req vs shipped"]
    what = "one 28x28 PNG" if arguments.route == "predict" else "one V2 JSON tensor"
    title = f"POST {ROUTES[arguments.route]}, {what}: each lever against the shipped service"
    print_table(title, header, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
