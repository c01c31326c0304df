"""Bulk: the 10,000 MNIST test images through V2 inference (gRPC, REST binary and JSON) and
``/predict``.

Run: ``python -m benchmarks.bulk`` (about 1 minute). Each figure is end to end for one client
on one keep-alive connection (one gRPC channel), each mode's kept for the whole run: encode the
batch, send it, the server's work, read and decode the answer to digits. gRPC sends ModelInfer
with raw contents, built with the service's stubs as directly as the REST modes build their
bodies, and through tritonclient.grpc as its users would (see ``benchmarks/grpc_bulk.py``).
"onnxruntime alone" is the same batches through an in-process session with the service's
options: the floor that HTTP and encoding add to. ``/predict`` gets PNGs encoded beforehand, as a
client holding image files would have them.
"""

import http.client
import json
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import grpc
import numpy as np
import orjson

from benchmarks.data import mnist_test_set, multipart_body, png_bytes
from benchmarks.grpc_bulk import Pass, grpc_passes, read_microseconds
from benchmarks.report import conditions, print_table, ratio
from benchmarks.run import parser_for, workspace
from benchmarks.servers import HOST, free_port, service_server
from service.inference.classifier import Classifier

Encoder = Callable[[np.ndarray], tuple[bytes, dict[str, str]]]
Decoder = Callable[[http.client.HTTPResponse, bytes], np.ndarray]


@dataclass(frozen=True)
class Mode:
    """One way of sending a batch: the path, how to encode it and how to read the answer."""

    name: str
    path: str
    encode: Encoder
    decode: Decoder


def _parse(argv: list[str] | None):
    parser = parser_for(__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000, help="MNIST test images to send")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 1024, 4096, 10_000])
    parser.add_argument("--files-per-request", type=int, default=64, help="for /predict")
    parser.add_argument("--passes", type=int, default=3, help="passes over the images; best counts")
    parser.add_argument(
        "--intra-op-threads",
        type=int,
        default=None,
        help="MNIST_INTRA_OP_THREADS for the server (default: the service's own default)",
    )
    return parser.parse_args(argv)


def encode_binary(images: np.ndarray) -> tuple[bytes, dict[str, str]]:
    """Triton's binary tensor extension: a JSON header, then the raw uint8 pixels."""
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "image",
                    "shape": list(images.shape),
                    "datatype": "UINT8",
                    "parameters": {"binary_data_size": images.nbytes},
                }
            ],
            "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}],
        }
    )
    headers = {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(len(header)),
    }
    return header + images.tobytes(), headers


def decode_binary(response: http.client.HTTPResponse, body: bytes) -> np.ndarray:
    """The raw FP32 probabilities after the JSON header, without copying."""
    header_length = int(response.getheader("Inference-Header-Content-Length", "0"))
    return np.frombuffer(body, dtype=np.float32, offset=header_length).reshape(-1, 10)


def encode_json(images: np.ndarray) -> tuple[bytes, dict[str, str]]:
    """V2 JSON tensors, data flat; orjson writes the numpy array without a Python list."""
    tensor = {"name": "image", "shape": list(images.shape), "datatype": "UINT8"}
    body = orjson.dumps(
        {"inputs": [tensor | {"data": images.reshape(-1)}]}, option=orjson.OPT_SERIALIZE_NUMPY
    )
    return body, {"Content-Type": "application/json"}


def decode_json(response: http.client.HTTPResponse, body: bytes) -> np.ndarray:
    """The flat ``data`` of the one output, as [N, 10]."""
    return np.asarray(orjson.loads(body)["outputs"][0]["data"], dtype=np.float32).reshape(-1, 10)


def predict_encoder(pngs: dict[bytes, bytes]) -> Encoder:
    """Multipart ``files`` parts of PNGs encoded beforehand (looked up by the image's bytes)."""

    def encode(images: np.ndarray) -> tuple[bytes, dict[str, str]]:
        files = [pngs[image.tobytes()] for image in images]
        body, content_type = multipart_body("files", files)
        return body, {"Content-Type": content_type}

    return encode


def decode_predict(response: http.client.HTTPResponse, body: bytes) -> np.ndarray:
    """Each prediction's ten probabilities, in the order the files were sent."""
    predictions = orjson.loads(body)["predictions"]
    return np.asarray([prediction["probabilities"] for prediction in predictions], np.float32)


def one_pass(port: int, mode: Mode, images: np.ndarray, batch: int) -> tuple[float, np.ndarray]:
    """Seconds for all the images in batches of ``batch`` on a new connection, and the digits."""
    connection = http.client.HTTPConnection(HOST, port, timeout=120)
    try:
        return kept_pass(connection, mode, images, batch)
    finally:
        connection.close()


def kept_pass(
    connection: http.client.HTTPConnection, mode: Mode, images: np.ndarray, batch: int
) -> tuple[float, np.ndarray]:
    """The same on a connection kept between passes (opened again if the server closed it)."""
    digits = []
    started = time.perf_counter()
    for start in range(0, len(images), batch):
        body, headers = mode.encode(images[start : start + batch])
        try:
            response, answer = _exchange(connection, mode.path, body, headers)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            connection.close()
            response, answer = _exchange(connection, mode.path, body, headers)
        if response.status != 200:
            raise RuntimeError(f"{mode.name}: {response.status} {answer[:300]!r}")
        digits.append(mode.decode(response, answer).argmax(axis=1))
    return time.perf_counter() - started, np.concatenate(digits)


def _exchange(connection: http.client.HTTPConnection, path: str, body: bytes, headers: dict):
    connection.request("POST", path, body=body, headers=headers)
    response = connection.getresponse()
    return response, response.read()


def in_process_seconds(classifier: Classifier, images: np.ndarray, batch: int) -> float:
    """The same batches through onnxruntime in this process: the floor."""
    started = time.perf_counter()
    for start in range(0, len(images), batch):
        classifier.predict(images[start : start + batch])
    return time.perf_counter() - started


def batch_rows(sends: list[tuple[str, Pass]], batch: int, data, classifier, passes: int) -> list:
    """Every mode at one batch size, their passes interleaved (each mode, then the floor, then
    again), so that a busy moment of the shared machine falls on all of them alike; the best
    pass counts, with accuracy as a check of the answers."""
    images, labels = data
    runs: dict[str, list[tuple[float, np.ndarray]]] = {name: [] for name, _ in sends}
    failures: dict[str, str] = {}
    floors = []
    for _ in range(passes):
        for name, send in sends:
            if name not in failures:
                try:
                    runs[name].append(send(images, batch))
                except (RuntimeError, grpc.RpcError) as error:
                    failures[name] = str(error)[:60]
        floors.append(in_process_seconds(classifier, images, batch))
    alone = len(images) / min(floors)
    rows = []
    for name, _ in sends:
        if name in failures:
            rows.append([name, batch, "not served", failures[name], "", "", ""])
            continue
        seconds, digits = min(runs[name], key=lambda run: run[0])
        speed = len(images) / seconds
        accuracy = f"{100.0 * float(np.mean(digits == labels)):.2f} %"
        per_request = f"{1000.0 * seconds / -(-len(images) // batch):.2f}"
        rows.append([name, batch, speed, per_request, accuracy, alone, ratio(speed, alone)])
    return rows


def _modes(model: Path, images: np.ndarray) -> list[Mode]:
    name = json.loads(model.with_suffix(".json").read_text(encoding="utf-8"))["name"]
    infer = f"/v2/models/{name}/infer"
    pngs = {image.tobytes(): png_bytes(image) for image in images}
    return [
        Mode("V2 binary", infer, encode_binary, decode_binary),
        Mode("V2 JSON", infer, encode_json, decode_json),
        Mode("/predict files", "/predict", predict_encoder(pngs), decode_predict),
    ]


def measure(model: Path, workdir: Path, data, arguments) -> list:
    """Start the service (as shipped, or with the threads asked for) and send every mode."""
    threads = arguments.intra_op_threads
    card = model.with_suffix(".json")
    classifier = Classifier.from_files(model, card, 1 if threads is None else threads)
    variables = {} if threads is None else {"MNIST_INTRA_OP_THREADS": str(threads)}
    rows = []
    grpc_port = free_port()
    name = json.loads(card.read_text(encoding="utf-8"))["name"]
    with (
        service_server(model, workdir, MNIST_GRPC_PORT=str(grpc_port), **variables) as server,
        ExitStack() as clients,
    ):
        sends = grpc_passes(clients, f"{HOST}:{grpc_port}", name)
        for mode in _modes(model, data[0]):
            connection = http.client.HTTPConnection(HOST, server.port, timeout=120)
            clients.callback(connection.close)
            sends.append((mode.name, partial(kept_pass, connection, mode)))
        tensors = [(name, send) for name, send in sends if name != "/predict files"]
        for batch in arguments.batch_sizes:
            rows += batch_rows(tensors, batch, data, classifier, arguments.passes)
        files = [(name, send) for name, send in sends if name == "/predict files"]
        rows += batch_rows(files, arguments.files_per_request, data, classifier, arguments.passes)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Measure, print one table and the conditions."""
    arguments = _parse(argv)
    if arguments.quick:
        arguments.images, arguments.batch_sizes, arguments.passes = 512, [256], 1
    data = mnist_test_set(arguments.images)
    with workspace(arguments.model) as (workdir, model, _):
        rows = measure(model, workdir, data, arguments)
    threads = "default" if arguments.intra_op_threads is None else arguments.intra_op_threads
    print(
        f"Conditions: {conditions(model)}; {len(data[0]):,} images, one client connection; "
        f"server intra-op threads: {threads}"
    )
    header = ["mode", "batch", "images/s", "ms/request", "accuracy", "onnxruntime alone", "ratio"]
    print_table("Bulk: end to end images/s, one worker", header, rows)
    batch = max(arguments.batch_sizes)
    protobuf, ours = read_microseconds(data[0], batch)
    print(
        f"Reading one ModelInferRequest of {min(batch, len(data[0])):,} images in this process "
        f"(median of 50): protobuf's parser {protobuf:,.0f} µs, the service's reader {ours:,.0f} µs"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
