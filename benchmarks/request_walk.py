"""How many Python functions one request runs, from the socket to its answer, per transport.

Run: ``python -m benchmarks.request_walk`` (about 30 seconds). The service runs as shipped
(``python -m service``, one worker, access log on) in a child process whose every thread counts
the Python functions it enters while counting is on; SIGUSR1 turns counting on and off. One
request of each kind (``POST /predict`` of one PNG, V2 REST infer of one JSON UINT8 [1, 28, 28]
tensor, gRPC ModelInfer of one raw tensor) is sent alone, after warm-up, in a counted window;
the same window with no request (timers, the log writer) is subtracted. Each figure is the
median of ``--repeat`` windows.
"""

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.data import ROOT, one_digit_infer_request, one_digit_request
from benchmarks.run import parser_for
from benchmarks.servers import free_port, http_status

COUNTER = """
import os, signal, sys, threading
counting = False
count = 0
def profile(frame, event, argument):
    global count
    if counting and event == "call":
        count += 1
def toggle(number, frame):
    global counting, count
    if counting:
        counting = False
        with open(os.environ["WALK_COUNT_FILE"], "w") as out:
            out.write(str(count))
    else:
        count = 0
        counting = True
signal.signal(signal.SIGUSR1, toggle)
threading.setprofile(profile)
sys.setprofile(profile)
from service.__main__ import main
sys.exit(main())
"""
WINDOW_SECONDS = 0.3


def _parse(argv: list[str] | None):
    parser = parser_for(__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="counted windows per request kind")
    return parser.parse_args(argv)


def _counted(server: subprocess.Popen, count_file: Path, request) -> int:
    """Functions run by the server in one window, around ``request()`` (None: no request)."""
    count_file.unlink(missing_ok=True)
    server.send_signal(signal.SIGUSR1)
    time.sleep(0.05)
    if request is not None:
        request()
    time.sleep(WINDOW_SECONDS)
    server.send_signal(signal.SIGUSR1)
    for _ in range(100):
        if count_file.exists() and count_file.read_text():
            return int(count_file.read_text())
        time.sleep(0.02)
    raise RuntimeError("the server did not report its count")


def _requests(port: int, grpc_port: int) -> dict[str, object]:
    import grpc
    import httpx

    from service.grpc.proto import grpc_predict_v2_pb2 as pb
    from service.grpc.proto import grpc_predict_v2_pb2_grpc as pb_grpc

    client = httpx.Client(base_url=f"http://127.0.0.1:{port}")
    png, png_type = one_digit_request()
    infer, infer_type = one_digit_infer_request()
    stub = pb_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(f"127.0.0.1:{grpc_port}"))
    image = np.zeros((1, 28, 28), np.uint8)
    grpc_request = pb.ModelInferRequest(
        model_name="mnist_mlp",
        inputs=[
            pb.ModelInferRequest.InferInputTensor(name="image", datatype="UINT8", shape=[1, 28, 28])
        ],
        raw_input_contents=[image.tobytes()],
    )

    def predict() -> None:
        response = client.post("/predict", content=png, headers={"content-type": png_type})
        response.raise_for_status()

    def rest_infer() -> None:
        response = client.post(
            "/v2/models/mnist_mlp/infer", content=infer, headers={"content-type": infer_type}
        )
        response.raise_for_status()

    def grpc_infer() -> None:
        stub.ModelInfer(grpc_request)

    return {"POST /predict": predict, "REST V2 infer": rest_infer, "gRPC ModelInfer": grpc_infer}


def main(argv: list[str] | None = None) -> int:
    arguments = _parse(argv)
    with tempfile.TemporaryDirectory(prefix="mnist-walk-") as workdir:
        count_file = Path(workdir) / "count"
        port, grpc_port = free_port(), free_port()
        environment = os.environ | {
            "WALK_COUNT_FILE": str(count_file),
            "MNIST_PORT": str(port),
            "MNIST_GRPC_PORT": str(grpc_port),
            "PYTHONPATH": str(ROOT),
        }
        server = subprocess.Popen(
            [sys.executable, "-c", COUNTER], env=environment, stderr=subprocess.DEVNULL
        )
        try:
            for _ in range(600):
                if http_status(port, "/v2/health/ready") == 200:
                    break
                time.sleep(0.1)
            requests = _requests(port, grpc_port)
            for request in requests.values():
                for _ in range(20):
                    request()
            print("| request | Python functions called (median) | idle window |")
            print("|---|---|---|")
            for name, request in requests.items():
                idle, busy = [], []
                for _ in range(arguments.repeat):
                    idle.append(_counted(server, count_file, None))
                    busy.append(_counted(server, count_file, request))
                idle_median = statistics.median(idle)
                walk = statistics.median(busy) - idle_median
                print(f"| {name} | {walk:.0f} | {idle_median:.0f} |")
        finally:
            server.terminate()
            server.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
