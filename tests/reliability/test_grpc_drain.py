"""SIGTERM on a live ``python -m service`` under gRPC load: every call the server had received
before the signal is served (calls held half sent, and calls of 16 real clients that send one
after another), later ones are refused with UNAVAILABLE, none is cancelled, each call that the
service answered has its access-log line, and the process exits 0 within the drain bound."""

import re
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np

from service.grpc.proto import grpc_predict_v2_pb2 as pb
from tests.support.grpc_servers import inference_stub
from tests.support.http2 import HeldCall
from tests.support.live_server import LiveService

METHOD = "/inference.GRPCInferenceService/ModelInfer"
CLIENTS = 16
# Each holds a share of the in-flight budget for two of the largest messages while its message
# is arriving, and slow ones at most half the budget between them (service.grpc.admission).
HELD = 1
DRAIN_SECONDS = 10.0
STOPPING = "the server is stopping"
ACCESS_LINE = re.compile(rf"gRPC {METHOD} ([A-Z_]+) ")


def infer_request(count: int = 64) -> pb.ModelInferRequest:
    images = np.zeros((count, 28, 28), np.uint8)
    message = pb.ModelInferRequest(model_name="mnist_mlp", raw_input_contents=[images.tobytes()])
    message.inputs.add(name="image", datatype="UINT8", shape=list(images.shape))
    return message


@dataclass(frozen=True)
class Call:
    started: float
    ended: float
    code: grpc.StatusCode
    details: str


def client(target: str, calls: list[Call], stop: threading.Event) -> None:
    """One call after another until the first that is not OK, as a client that then goes to
    another server would."""
    request = infer_request()
    with inference_stub(target) as stub:
        while not stop.is_set():
            started = time.monotonic()
            try:
                stub.ModelInfer(request, timeout=30)
                code, details = grpc.StatusCode.OK, ""
            except grpc.RpcError as error:
                code, details = error.code(), error.details() or ""
            calls.append(Call(started, time.monotonic(), code, details))
            if code != grpc.StatusCode.OK:
                return


def test_sigterm_serves_every_call_received_before_it_and_cancels_none(model_path: Path) -> None:
    service = LiveService(model_path, access_log="true", grpc_drain_seconds=str(DRAIN_SECONDS))
    calls: list[Call] = []
    stop = threading.Event()
    clients = [
        threading.Thread(target=client, args=(service.grpc_target, calls, stop))
        for _ in range(CLIENTS)
    ]
    try:
        service.wait_until_ready()
        held = [
            HeldCall(service.grpc_port, METHOD, infer_request().SerializeToString())
            for _ in range(HELD)
        ]
        for thread in clients:
            thread.start()
        time.sleep(1.0)
        signalled = time.monotonic()
        service.process.send_signal(signal.SIGTERM)
        service.wait_for_log("gRPC stopping")
        finished = [call.finish() for call in held]
        stop.set()
        for thread in clients:
            thread.join(timeout=30)
        exit_code = service.process.wait(timeout=DRAIN_SECONDS + 20)
        exited = time.monotonic() - signalled
    finally:
        stop.set()
        service.stop()
    in_flight = [call for call in calls if call.started < signalled < call.ended]
    codes = Counter(call.code.name for call in calls)
    print(
        f"SIGTERM with {len(in_flight) + HELD} calls in flight ({HELD} held half sent): "
        f"{Counter(call.code.name for call in in_flight)} of the clients' and "
        f"{Counter(trailers.get('grpc-status') for trailers, _ in finished)} held; every call: "
        f"{codes}; exit {exit_code} after {exited:.2f} s"
    )
    assert all(trailers.get("grpc-status") == "0" for trailers, _ in finished), finished
    assert all(
        pb.ModelInferResponse.FromString(message).outputs[0].shape == [64, 10]
        for _, message in finished
    )
    assert set(codes) <= {"OK", "UNAVAILABLE"}, codes  # none CANCELLED
    refused = [call for call in calls if call.code == grpc.StatusCode.UNAVAILABLE]
    answered_refusals = sum(STOPPING in call.details for call in refused)
    lines = Counter(match[1] for line in service.log if (match := ACCESS_LINE.search(line)))
    assert lines["OK"] == codes["OK"] + HELD, lines
    assert lines["UNAVAILABLE"] == answered_refusals, (lines, refused)
    assert exit_code == 0, service.log_text()
    assert exited < DRAIN_SECONDS
