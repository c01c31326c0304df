"""Unary: one image per call, gRPC ModelInfer against REST V2 infer, calls/s, one load generator.

Run: ``python -m benchmarks.unary`` (about 2 minutes; needs h2load: ``apt-get install -y
nghttp2-client``, or pass --install-h2load). The service runs as shipped, beside the gRPC floor
(benchmarks/grpc_floor_app.py: ModelInfer on grpc.aio with no checks). h2load, a C client,
drives both transports: HTTP/2 for gRPC (a framed ModelInferRequest with raw contents, as
tritonclient.grpc sends it), HTTP/1.1 (``--h1``) for REST (the V2 binary body, and the JSON one).
Every body is answered once before the runs; h2load reads HTTP statuses, not gRPC's, so the
service's own count of OK gRPC calls is checked after them. "onnxruntime alone" is one image per
call through an in-process session with the service's options.
"""

import re
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import numpy as np
import orjson

from benchmarks.bulk import encode_binary
from benchmarks.data import mnist_test_set
from benchmarks.report import conditions, print_table, ratio
from benchmarks.run import parser_for, workspace
from benchmarks.servers import HOST, Server, free_port, grpc_floor_server, service_server
from service.grpc.proto import grpc_predict_v2_pb2 as pb
from service.inference.classifier import Classifier

INSTALL_HINT = (
    "h2load is not installed: apt-get install -y nghttp2-client, or pass --install-h2load"
)
GRPC_METHOD = "/inference.GRPCInferenceService/ModelInfer"
OK_CALLS = re.compile(r'mnist_grpc_requests_total\{code="OK",method="[^"]*/ModelInfer"\} (\S+)')


@dataclass(frozen=True)
class Target:
    """One way of making the call: where, over which protocol, with which body and headers."""

    name: str
    url: str
    body: bytes
    headers: dict[str, str]
    http1: bool
    # Whether the service answers it (and counts its OK gRPC calls), not a floor.
    on_service: bool = True


def _parse(argv: list[str] | None):
    parser = parser_for(__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each h2load run")
    parser.add_argument("--install-h2load", action="store_true", help="apt-get it if missing")
    parser.add_argument(
        "--no-dynamic-batching",
        dest="dynamic_batching",
        action="store_false",
        help="serve with MNIST_DYNAMIC_BATCHING=false (default: as shipped, on)",
    )
    return parser.parse_args(argv)


def ensure_h2load(install: bool) -> str:
    found = shutil.which("h2load")
    if found is None and install:
        subprocess.run(["apt-get", "install", "-y", "-q", "nghttp2-client"], check=True)
        found = shutil.which("h2load")
    if found is None:
        raise SystemExit(INSTALL_HINT)
    return found


def targets(
    model_name: str, http_port: int, grpc_port: int, floor_port: int, image: np.ndarray
) -> list[Target]:
    """The four calls, each for the same one image: the service's three and the gRPC floor's."""
    message = pb.ModelInferRequest(model_name=model_name, raw_input_contents=[image.tobytes()])
    message.inputs.add(name="image", datatype="UINT8", shape=list(image.shape))
    payload = message.SerializeToString()
    framed = b"\x00" + len(payload).to_bytes(4, "big") + payload
    grpc_headers = {"content-type": "application/grpc", "te": "trailers"}
    infer = f"http://{HOST}:{http_port}/v2/models/{model_name}/infer"
    binary, binary_headers = encode_binary(image)
    tensor = {"name": "image", "shape": list(image.shape), "datatype": "UINT8"}
    json_body = orjson.dumps({"inputs": [tensor | {"data": image.ravel().tolist()}]})
    return [
        Target("gRPC raw", f"http://{HOST}:{grpc_port}{GRPC_METHOD}", framed, grpc_headers, False),
        Target("REST V2 binary", infer, binary, binary_headers, True),
        Target("REST V2 JSON", infer, json_body, {"Content-Type": "application/json"}, True),
        Target(
            "gRPC floor",
            f"http://{HOST}:{floor_port}{GRPC_METHOD}",
            framed,
            grpc_headers,
            False,
            on_service=False,
        ),
    ]


def check_answers(target: Target, image: np.ndarray) -> None:
    """Each body, sent once by an ordinary client, gets a real answer (not an error)."""
    if not target.http1:
        with grpc.insecure_channel(f"{HOST}:{urlsplit(target.url).port}") as channel:
            call = channel.unary_unary(GRPC_METHOD)
            answer = pb.ModelInferResponse.FromString(call(target.body[5:], timeout=10))
        if list(answer.outputs[0].shape) != [len(image), 10]:
            raise SystemExit(f"{target.name}: unexpected answer {answer}")
        return
    request = urllib.request.Request(target.url, data=target.body, headers=target.headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status != 200:
            raise SystemExit(f"{target.name}: HTTP {response.status}")


@dataclass(frozen=True)
class Bench:
    """What every run shares: h2load, the running service, its gRPC port, a folder, the length."""

    h2load: str
    server: Server
    grpc_port: int
    floor: Server
    workdir: Path
    seconds: int


@dataclass(frozen=True)
class Result:
    """One h2load run: calls/s, mean latency, calls that failed, and the server's CPU per call."""

    calls_per_second: float
    mean_ms: float
    failed: int
    succeeded: int
    server_cpu_us: float


def run_h2load(bench: Bench, target: Target, load: tuple[int, int]) -> Result:
    """``load`` is (connections, streams on each); the figures from h2load's summary."""
    clients, streams = load
    body_file = bench.workdir / f"{target.name.replace(' ', '_')}.body"
    body_file.write_bytes(target.body)
    command = [bench.h2load, "-c", str(clients), "-m", str(streams), "-D", str(bench.seconds)]
    command += ["-d", str(body_file)]
    for name, value in target.headers.items():
        command += ["-H", f"{name}: {value}"]
    command += ["--h1", target.url] if target.http1 else [target.url]
    server = bench.server if target.on_service else bench.floor
    cpu_before = server.cpu_seconds()
    timeout = bench.seconds + 60
    output = subprocess.run(command, capture_output=True, text=True, timeout=timeout).stdout
    cpu = server.cpu_seconds() - cpu_before
    calls = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", output)
    done = re.search(r"requests: .*?(\d+) succeeded, (\d+) failed, (\d+) errored", output)
    latency = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", output)
    if not (calls and done and latency):
        raise SystemExit(f"h2load printed no summary for {target.name}:\n{output[-1500:]}")
    succeeded = int(done[1])
    return Result(
        calls_per_second=float(calls[1]),
        mean_ms=_milliseconds(latency[1]),
        failed=int(done[2]) + int(done[3]),
        succeeded=succeeded,
        server_cpu_us=1e6 * cpu / max(succeeded, 1),
    )


UNITS_IN_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _milliseconds(value: str) -> float:
    """h2load's "412us", "1.53ms" or "2.01s" in milliseconds."""
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()
    return float(number) * UNITS_IN_MS[unit]


def ok_grpc_calls(http_port: int) -> float:
    with urllib.request.urlopen(f"http://{HOST}:{http_port}/metrics", timeout=10) as reply:
        found = OK_CALLS.search(reply.read().decode())
    return float(found[1]) if found else 0.0


def in_process_calls_per_second(classifier: Classifier, image: np.ndarray, seconds: float) -> float:
    """One image per onnxruntime call in this process, for ``seconds``: the floor."""
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        classifier.predict(image)
        calls += 1
    return calls / (time.perf_counter() - started)


def measured(bench: Bench, target: Target, load: tuple[int, int]) -> Result:
    """One run; for gRPC, the server must have counted as many OK calls as h2load saw."""
    before = ok_grpc_calls(bench.server.port)
    result = run_h2load(bench, target, load)
    counted = not target.http1 and target.on_service
    if counted and ok_grpc_calls(bench.server.port) - before < result.succeeded:
        raise SystemExit(f"{target.name}: the server counted fewer OK calls than h2load")
    return result


def measure_rows(bench: Bench, model: Path, concurrency: list[int]) -> tuple[list, float]:
    """One row per call kind and concurrency, with the ratios to REST binary, to the gRPC floor
    under the same load, and to onnxruntime alone."""
    name = orjson.loads(model.with_suffix(".json").read_bytes())["name"]
    image = mnist_test_set(1)[0]
    classifier = Classifier.from_files(model, model.with_suffix(".json"), 1)
    floor = in_process_calls_per_second(classifier, image, bench.seconds)
    calls = targets(name, bench.server.port, bench.grpc_port, bench.floor.port, image)
    grpc_call, rest_binary, rest_json, grpc_floor = calls
    for target in calls:
        check_answers(target, image)
    rows = []
    for width in concurrency:
        grpc_loads = [(width, 1), (1, width)] if width > 1 else [(width, 1)]
        shapes = [(target, load) for load in grpc_loads for target in (grpc_floor, grpc_call)]
        shapes += [(rest_binary, (width, 1)), (rest_json, (width, 1))]
        results = [(target, load, measured(bench, target, load)) for target, load in shapes]
        rest = next(result for target, _, result in results if target is rest_binary)
        floors = {load: result for target, load, result in results if target is grpc_floor}
        for target, (clients, streams), result in results:
            versus_floor = (
                ""
                if target.http1
                else ratio(result.calls_per_second, floors[(clients, streams)].calls_per_second)
            )
            rows.append([
                target.name,
                clients,
                streams,
                result.calls_per_second,
                f"{result.mean_ms:.2f}",
                result.failed,
                f"{result.server_cpu_us:.0f}",
                ratio(result.calls_per_second, rest.calls_per_second),
                versus_floor,
                ratio(result.calls_per_second, floor),
            ])  # fmt: skip
    return rows, floor


def main(argv: list[str] | None = None) -> int:
    arguments = _parse(argv)
    if arguments.quick:
        arguments.concurrency, arguments.seconds = [8], 1.0
    h2load = ensure_h2load(arguments.install_h2load)
    grpc_port = free_port()
    seconds = max(1, round(arguments.seconds))
    variables = {"MNIST_GRPC_PORT": str(grpc_port)}
    if not arguments.dynamic_batching:
        variables["MNIST_DYNAMIC_BATCHING"] = "false"
    with (
        workspace(arguments.model) as (workdir, model, _),
        service_server(model, workdir, **variables) as server,
        grpc_floor_server(model, workdir) as grpc_floor,
    ):
        bench = Bench(h2load, server, grpc_port, grpc_floor, workdir, seconds)
        rows, floor = measure_rows(bench, model, arguments.concurrency)
    print(
        f"Conditions: {conditions(model)}; one worker as shipped; h2load, "
        f"{seconds} s per run; dynamic batching {'on' if arguments.dynamic_batching else 'off'}; "
        "onnxruntime alone, one image "
        f"per call in one thread: {floor:,.0f} calls/s"
    )
    header = [
        "call",
        "connections",
        "streams each",
        "calls/s",
        "mean ms",
        "failed",
        "server CPU µs/call",
        "vs REST binary",
        "vs gRPC floor",
        "vs onnxruntime alone",
    ]
    print_table("Unary: one image per call", header, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
