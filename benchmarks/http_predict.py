"""The hot routes over HTTP with wrk, against bare FastAPI and the raw-ASGI floor, one worker each.

Run: ``python -m benchmarks.http_predict`` (about 5 minutes). Four servers run side by side:
the service exactly as shipped (``python -m service``, defaults, its log to a file), the bare
FastAPI + onnxruntime reference (benchmarks/reference_app.py), the floor, the same job on a
raw ASGI callable with no checks (benchmarks/floor_app.py), and the FastAPI floor, the floor's
callable behind FastAPI's middleware stack and router (benchmarks/stack_floor_app.py), all under
the same uvicorn. They are
loaded in turn, in an order that rotates, ``--repeat`` times; each figure is the median of its
repetitions, so ours / floor and ours / bare hold even while the machine is busy.

Routes: ``predict`` posts one 28x28 PNG as multipart ``file``; ``infer`` and ``infer-version``
post one V2 JSON tensor UINT8 [1, 28, 28] to ``/v2/models/{name}[/versions/{v}]/infer`` (the
reference and the floor serve the unversioned path for both).
"""

import json
import statistics
from pathlib import Path

from benchmarks.data import one_digit_infer_request, one_digit_request
from benchmarks.load import RESULT_HEADERS, Load, LoadResult, ensure_wrk, run_wrk, warm_up
from benchmarks.report import conditions, print_table, ratio
from benchmarks.run import parser_for, workspace
from benchmarks.servers import floor_server, reference_server, service_server, stack_floor_server

ROUTES = ("predict", "infer", "infer-version")
# The servers "ours" is compared with, each in a column of its own.
REFERENCES = ("floor", "FastAPI floor", "bare FastAPI")


def _parse(argv: list[str] | None):
    parser = parser_for(__doc__.splitlines()[0])
    parser.add_argument("--routes", nargs="+", choices=ROUTES, default=["predict", "infer"])
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each wrk run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per server and point")
    parser.add_argument(
        "--workers", type=int, default=0, help="also compare this many workers with one (0: no)"
    )
    parser.add_argument(
        "--no-dynamic-batching",
        dest="dynamic_batching",
        action="store_false",
        help="run the service with MNIST_DYNAMIC_BATCHING=false (default: as shipped, on)",
    )
    parser.add_argument("--install-wrk", action="store_true", help="apt-get install wrk if missing")
    return parser.parse_args(argv)


def single_image_body(workdir: Path) -> tuple[Path, str]:
    """The first MNIST test digit as a 28x28 PNG in a multipart ``file`` field, on disk for wrk."""
    body, content_type = one_digit_request()
    body_file = workdir / "predict_body.bin"
    body_file.write_bytes(body)
    return body_file, content_type


def infer_body(workdir: Path) -> tuple[Path, str]:
    """The first MNIST test digit as a V2 JSON tensor UINT8 [1, 28, 28], on disk for wrk."""
    body, content_type = one_digit_infer_request()
    body_file = workdir / "infer_body.bin"
    body_file.write_bytes(body)
    return body_file, content_type


def _paths(route: str, model: Path) -> tuple[str, str]:
    """The path to load on the service, and on the references, for ``route``."""
    if route == "predict":
        return "/predict", "/predict"
    card = json.loads(model.with_suffix(".json").read_text(encoding="utf-8"))
    unversioned = f"/v2/models/{card['name']}/infer"
    if route == "infer":
        return unversioned, unversioned
    return f"/v2/models/{card['name']}/versions/{card['version']}/infer", unversioned


def _median(results: list[LoadResult]) -> LoadResult:
    """The run with the median throughput, with the median p50 and p99 of all runs."""
    middle = sorted(results, key=lambda result: result.requests_per_second)[len(results) // 2]
    return LoadResult(
        middle.requests_per_second,
        statistics.median(result.p50_ms for result in results),
        statistics.median(result.p99_ms for result in results),
        sum(result.errors for result in results),
        statistics.median(result.server_cpu_ms for result in results),
    )


def _measure_point(wrk, servers: dict, loads: dict, repeat: int, warm: bool) -> dict:
    """Every server under its load ``repeat`` times, the order rotating each time."""
    names = list(servers)
    runs: dict[str, list[LoadResult]] = {name: [] for name in names}
    if warm:
        for name in names:
            warm_up(wrk, servers[name], loads[name])
    for repetition in range(repeat):
        shift = repetition % len(names)
        for name in names[shift:] + names[:shift]:
            runs[name].append(run_wrk(wrk, servers[name], loads[name]))
    return {name: _median(results) for name, results in runs.items()}


def _route_rows(wrk, servers: dict, route: str, body, model: Path, arguments) -> list:
    ours_path, reference_path = _paths(route, model)
    rows = []
    for connections in arguments.connections:
        loads = {
            name: Load(
                *body,
                ours_path if name == "ours" else reference_path,
                arguments.seconds,
                connections,
            )
            for name in servers
        }
        results = _measure_point(wrk, servers, loads, arguments.repeat, not arguments.quick)
        ours = results["ours"]
        floor = results["floor"]
        for name in ("floor", "FastAPI floor", "bare FastAPI"):
            others = [_versus(results[name], floor), "", ""] if name != "floor" else ["", "", ""]
            rows.append([connections, name, *results[name].row(), *others])
        rows.append(
            [
                connections,
                "ours",
                *ours.row(),
                *(_versus(ours, results[name]) for name in REFERENCES),
            ]
        )
    return rows


def _versus(result: LoadResult, reference: LoadResult) -> str:
    """Requests/s and p50 of ``result`` as multiples of ``reference``'s."""
    return (
        f"{ratio(result.requests_per_second, reference.requests_per_second)} req/s, "
        f"{ratio(result.p50_ms, reference.p50_ms)} p50"
    )


def _compare_workers(wrk, one, many, body: tuple[Path, str], arguments) -> list:
    load = Load(body[0], body[1], "/predict", arguments.seconds, 64)
    single = _measure_point(wrk, {"one": one}, {"one": load}, arguments.repeat, True)["one"]
    multiple = _measure_point(wrk, {"many": many}, {"many": load}, arguments.repeat, True)["many"]
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
    """Measure, then print one table per route and the conditions they were measured under."""
    arguments = _parse(argv)
    wrk = ensure_wrk(arguments.install_wrk)
    if arguments.quick:
        arguments.connections, arguments.seconds, arguments.repeat = [1], 1.0, 1
        arguments.routes, arguments.workers = ["predict", "infer-version"], 0
    with workspace(arguments.model) as (workdir, model, stack):
        bodies = {"predict": single_image_body(workdir), "infer": infer_body(workdir)}
        variables = {} if arguments.dynamic_batching else {"MNIST_DYNAMIC_BATCHING": "false"}
        servers = {
            "floor": stack.enter_context(floor_server(model, workdir)),
            "FastAPI floor": stack.enter_context(stack_floor_server(model, workdir)),
            "bare FastAPI": stack.enter_context(reference_server(model, workdir)),
            "ours": stack.enter_context(service_server(model, workdir, **variables)),
        }
        print(
            f"Conditions: {conditions(model)}; wrk 1 thread, {arguments.seconds:.0f} s per run, "
            f"median of {arguments.repeat}; dynamic batching "
            f"{'on' if arguments.dynamic_batching else 'off'}"
        )
        header = ["connections", "server", *RESULT_HEADERS]
        header += ["/ floor", "ours / FastAPI floor", "ours / bare"]
        for route in arguments.routes:
            body = bodies["predict" if route == "predict" else "infer"]
            rows = _route_rows(wrk, servers, route, body, model, arguments)
            print_table(f"{_paths(route, model)[0]}, one image, one worker", header, rows)
        if arguments.workers > 1:
            many = stack.enter_context(
                service_server(
                    model, workdir, arguments.workers, name="service workers", **variables
                )
            )
            rows = _compare_workers(wrk, servers["ours"], many, bodies["predict"], arguments)
            header = ["workers", "connections", *RESULT_HEADERS, "vs 1 worker"]
            print_table("POST /predict, workers", header, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
