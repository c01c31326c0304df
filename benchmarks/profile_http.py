"""Where a request's CPU goes: py-spy samples a server under wrk, µs per request by component.

Run: ``python -m benchmarks.profile_http`` (about 30 s). The service runs as shipped (``python
-m service``), or with ``--server`` one of the references; wrk loads ``POST /predict`` (one
28x28 PNG) or, with ``--route infer``, ``POST /v2/models/mnist_mlp/infer`` (one JSON tensor)
while py-spy samples every thread without pausing the process. Each sample goes to the
component of its innermost recognised frame, and the server's CPU time per request (from
/proc, around the wrk run) is split in those shares.
"""

import collections
import contextlib
import subprocess
import time
from pathlib import Path

from benchmarks.data import one_digit_infer_request, one_digit_request
from benchmarks.load import Load, ensure_wrk, run_wrk, warm_up
from benchmarks.report import conditions, print_table
from benchmarks.run import parser_for, workspace
from benchmarks.servers import floor_server, reference_server, service_server

# Frames of a thread that waits (blocked, not running), whatever py-spy's idle detection says.
WAITS = ("Condition.wait ", "Event.wait ", "Thread.join ")
ROUTES = {"predict": "/predict", "infer": "/v2/models/mnist_mlp/infer"}
SERVERS = {"ours": service_server, "bare": reference_server, "floor": floor_server}
# The first rule matching a frame's file names its component; frames are read leaf first.
COMPONENTS = (
    ("onnxruntime/", "onnxruntime"),
    ("(PIL/", "image decode (Pillow, pyspng)"),
    ("(pyspng/", "image decode (Pillow, pyspng)"),
    ("image_files.py", "image decode (Pillow, pyspng)"),
    ("png.py", "image decode (Pillow, pyspng)"),
    ("(numpy/", "numpy"),
    ("preprocessing.py", "preprocessing (ours)"),
    ("(python_multipart/", "multipart parsing"),
    ("multipart", "multipart parsing"),
    ("uploads.py", "multipart parsing"),
    ("(pydantic", "pydantic"),
    ("(prometheus_client/", "metrics"),
    ("metrics.py", "metrics"),
    ("(logging/", "logging"),
    ("service/logs.py", "logging"),
    ("middleware.py", "middleware (ours)"),
    ("(fastapi/", "FastAPI"),
    ("(starlette/", "Starlette"),
    ("(uvicorn/", "uvicorn (HTTP protocol)"),
    ("(anyio/", "anyio"),
    ("(asyncio/", "event loop and sockets"),
    ("(service/", "service (other)"),
)


def _parse(argv: list[str] | None):
    parser = parser_for(__doc__.splitlines()[0])
    parser.add_argument("--route", choices=sorted(ROUTES), default="predict")
    parser.add_argument(
        "--server", choices=sorted(SERVERS), default="ours", help="which server to sample"
    )
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of the sampled run")
    parser.add_argument("--rate", type=int, default=500, help="py-spy samples a second")
    parser.add_argument("--py-spy", default="py-spy", help="the py-spy executable")
    parser.add_argument("--raw-output", type=Path, help="keep py-spy's collapsed stacks here")
    return parser.parse_args(argv)


def component(stack: str) -> str:
    """The component of a collapsed stack ``outer;...;inner``: its innermost recognised frame."""
    for frame in reversed(stack.split(";")):
        for marker, name in COMPONENTS:
            if marker in frame:
                return name
    return "other"


def shares(raw: str) -> dict[str, float]:
    """Each component's fraction of the samples in py-spy's raw (collapsed) output.

    A thread blocked in a timed wait (the access log's writer between batches) is not always
    seen as idle by py-spy; those samples are not CPU and are left out.
    """
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit() and not stack.split(";")[-1].startswith(WAITS):
            counts[component(stack)] += int(count)
    total = sum(counts.values()) or 1
    return {name: count / total for name, count in counts.most_common()}


def _body(route: str, workdir: Path) -> tuple[Path, str]:
    body, content_type = one_digit_request() if route == "predict" else one_digit_infer_request()
    path = workdir / f"{route}_body.bin"
    path.write_bytes(body)
    return path, content_type


def main(argv: list[str] | None = None) -> int:
    """Sample one wrk run, then print the per-request breakdown."""
    arguments = _parse(argv)
    wrk = ensure_wrk(False)
    if arguments.quick:
        arguments.seconds, arguments.connections = 2.0, 1
    with workspace(arguments.model) as (workdir, model, stack):
        body_file, content_type = _body(arguments.route, workdir)
        server = stack.enter_context(SERVERS[arguments.server](model, workdir))
        path = ROUTES[arguments.route]
        load = Load(body_file, content_type, path, arguments.seconds, arguments.connections)
        warm_up(wrk, server, load)
        raw_path = arguments.raw_output or workdir / "stacks.txt"
        command = [arguments.py_spy, "record", "--pid", str(server.process.pid), "--nonblocking"]
        command += ["--rate", str(arguments.rate), "--format", "raw", "-o", str(raw_path)]
        command += ["--duration", str(round(arguments.seconds) + 2)]
        with contextlib.ExitStack() as sampling:
            spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            sampling.callback(spy.wait)
            time.sleep(1.0)
            result = run_wrk(wrk, server, load)
        if spy.returncode != 0:
            raise SystemExit(f"py-spy failed: {spy.stderr.read().decode()[-2000:]}")
        cpu_us = result.server_cpu_ms * 1000.0
        rows = [
            [name, f"{100 * share:.1f}%", f"{share * cpu_us:.0f}"]
            for name, share in shares(raw_path.read_text()).items()
        ]
        rows.append(["total (server CPU per request)", "100%", f"{cpu_us:.0f}"])
        print(
            f"Conditions: {conditions(model)}; {arguments.server}, {ROUTES[arguments.route]}, "
            f"{arguments.connections} connections, {result.requests_per_second:,.0f} req/s, "
            f"p50 {result.p50_ms:.2f} ms; py-spy {arguments.rate} Hz"
        )
        print_table("Server CPU per request, by component", ["component", "share", "µs"], rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
