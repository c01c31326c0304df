"""``POST /predict`` with one 28x28 PNG per request, against a bare FastAPI reference, with wrk.

Run: ``python -m benchmarks.http_predict`` (about 2 minutes). The service runs exactly as
shipped (``python -m service``, defaults, its log to a file); the reference is
benchmarks/reference_app.py under the same uvicorn options. Both run side by side and are loaded
in turn, so the ratio ours / reference holds even when the machine is busy.
"""

from pathlib import Path

from benchmarks.common import (
    conditions,
    one_digit_request,
    parser_for,
    print_table,
    ratio,
    reference_server,
    service_server,
    workspace,
)
from benchmarks.load import RESULT_HEADERS, Load, LoadResult, ensure_wrk, run_wrk, warm_up


def _parse(argv: list[str] | None):
    parser = parser_for(__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each wrk run")
    parser.add_argument("--workers", type=int, default=2, help="workers to compare with one")
    parser.add_argument(
        "--workers-connections", type=int, default=64, help="connections for the workers run"
    )
    parser.add_argument(
        "--dynamic-batching",
        action="store_true",
        help="run the service with MNIST_DYNAMIC_BATCHING=true (the reference is unchanged)",
    )
    parser.add_argument("--install-wrk", action="store_true", help="apt-get install wrk if missing")
    return parser.parse_args(argv)


def single_image_body(workdir: Path) -> tuple[Path, str]:
    """The first MNIST test digit as a 28x28 PNG in a multipart ``file`` field, on disk for wrk."""
    body, content_type = one_digit_request()
    body_file = workdir / "predict_body.bin"
    body_file.write_bytes(body)
    return body_file, content_type


def _measure(wrk: str, servers: list, load: Load, warm: bool) -> list[LoadResult]:
    """Load each server in turn with the same load (after a warm-up second when ``warm``)."""
    results = []
    for server in servers:
        if warm:
            warm_up(wrk, server, load)
        results.append(run_wrk(wrk, server, load))
    return results


def _compare_with_reference(wrk, ours, reference, body: tuple[Path, str], arguments) -> list:
    """Rows per connection count; the order alternates so that drift does not favour one side."""
    rows = []
    for index, connections in enumerate(arguments.connections):
        load = Load(body[0], body[1], "/predict", arguments.seconds, connections)
        servers = [reference, ours] if index % 2 == 0 else [ours, reference]
        results = dict(zip(servers, _measure(wrk, servers, load, not arguments.quick), strict=True))
        mine, theirs = results[ours], results[reference]
        rows.append([connections, "reference", *theirs.row(), ""])
        throughput = ratio(mine.requests_per_second, theirs.requests_per_second)
        latency = ratio(mine.p50_ms, theirs.p50_ms)
        rows.append([connections, "ours", *mine.row(), f"{throughput} req/s, {latency} p50"])
    return rows


def _compare_workers(wrk, one, many, body: tuple[Path, str], arguments) -> list:
    load = Load(body[0], body[1], "/predict", arguments.seconds, arguments.workers_connections)
    single, multiple = _measure(wrk, [one, many], load, not arguments.quick)
    return [
        [1, load.connections, *single.row(), ""],
        [
            arguments.workers,
            load.connections,
            *multiple.row(),
            ratio(multiple.requests_per_second, single.requests_per_second),
        ],
    ]


def main(argv: list[str] | None = None) -> int:
    """Measure, then print the two tables and the conditions they were measured under."""
    arguments = _parse(argv)
    wrk = ensure_wrk(arguments.install_wrk)
    if arguments.quick:
        arguments.connections, arguments.seconds, arguments.workers = [1], 1.0, 1
    with workspace(arguments.model) as (workdir, model, stack):
        body = single_image_body(workdir)
        variables = {"MNIST_DYNAMIC_BATCHING": "true"} if arguments.dynamic_batching else {}
        ours = stack.enter_context(service_server(model, workdir, **variables))
        reference = stack.enter_context(reference_server(model, workdir))
        rows = _compare_with_reference(wrk, ours, reference, body, arguments)
        header = ["connections", "server", *RESULT_HEADERS, "ours / reference"]
        print(
            f"Conditions: {conditions(model)}; wrk 1 thread, {arguments.seconds:.0f} s per run; "
            f"dynamic batching {'on' if arguments.dynamic_batching else 'off'}"
        )
        print_table("POST /predict, one 28x28 PNG, one worker", header, rows)
        if not arguments.quick:
            many = stack.enter_context(
                service_server(
                    model, workdir, arguments.workers, name="service workers", **variables
                )
            )
            rows = _compare_workers(wrk, ours, many, body, arguments)
            header = ["workers", "connections", *RESULT_HEADERS, "vs 1 worker"]
            print_table("POST /predict, workers", header, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
