"""gRPC in a real ``python -m service``: SIGTERM drains the calls of both transports in flight
(gRPC refusing new calls at once, not after HTTP's drain) and exits 0; every worker serves gRPC
on the one port; a port already taken fails loudly."""

import signal
import socket
import time
from pathlib import Path

import grpc
import numpy as np
import pytest

from service.grpc.proto import grpc_predict_v2_pb2 as pb
from tests.reliability.payloads import valid_png
from tests.support.grpc_servers import inference_stub
from tests.support.http2 import HeldCall
from tests.support.live_server import LiveService, RawConnection, live_service, start_upload
from tests.support.models import write_model

METHOD = "/inference.GRPCInferenceService/ModelInfer"
IMAGES = np.zeros((64, 28, 28), np.uint8)
REFUSAL_SECONDS = 5.0


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model(tmp_path_factory.mktemp("grpc-process"))


def infer_message() -> bytes:
    message = pb.ModelInferRequest(model_name="mnist_mlp", raw_input_contents=[IMAGES.tobytes()])
    message.inputs.add(name="image", datatype="UINT8", shape=list(IMAGES.shape))
    return message.SerializeToString()


def sigterm_with_work_in_flight(service: LiveService) -> tuple[RawConnection, HeldCall]:
    """An HTTP upload half sent and a gRPC call held open, then SIGTERM to the server."""
    service.wait_until_ready()
    upload = start_upload(service, valid_png())
    call = HeldCall(service.grpc_port, METHOD, infer_message())
    service.process.send_signal(signal.SIGTERM)
    return upload, call


def test_sigterm_drains_grpc_and_http_in_flight_then_exits_0(model_path: Path) -> None:
    service = LiveService(model_path)
    try:
        upload, call = sigterm_with_work_in_flight(service)
        service.wait_for_log("Shutting down")
        upload.send(valid_png())
        http_status, http_body = upload.read_response()
        service.wait_for_log("gRPC stopping")
        trailers, message = call.finish()
    finally:
        exit_code = service.stop()
    assert http_status == 200 and b'"digit"' in http_body
    assert trailers.get("grpc-status") == "0", trailers
    assert pb.ModelInferResponse.FromString(message).outputs[0].shape == [64, 10]
    assert exit_code == 0, service.log_text()


def refusal_of_a_new_call(target: str) -> grpc.StatusCode:
    """The code a new call gets once the stop has begun. The stop logs its line, then sends
    itself the marker that splits calls before it from calls after: a call that comes in
    between is still served, as any call before the stop is; the next one is refused."""
    deadline = time.monotonic() + REFUSAL_SECONDS
    with inference_stub(target) as stub:
        while time.monotonic() < deadline:
            try:
                stub.ServerReady(pb.ServerReadyRequest(), timeout=10)
            except grpc.RpcError as error:
                return error.code()
            time.sleep(0.01)
    pytest.fail(f"new calls were still served {REFUSAL_SECONDS} s after the stop began")


def test_sigterm_stops_new_grpc_calls_while_http_requests_still_drain(model_path: Path) -> None:
    service = LiveService(model_path)
    try:
        upload, call = sigterm_with_work_in_flight(service)
        service.wait_for_log("gRPC stopping")
        refused = refusal_of_a_new_call(service.grpc_target)
        trailers, message = call.finish()
        upload.send(valid_png())
        http_status, _ = upload.read_response()
    finally:
        exit_code = service.stop()
    assert refused == grpc.StatusCode.UNAVAILABLE
    assert trailers.get("grpc-status") == "0", trailers
    assert pb.ModelInferResponse.FromString(message).outputs[0].shape == [64, 10]
    assert http_status == 200
    assert exit_code == 0, service.log_text()


def test_every_worker_serves_grpc_on_the_same_port(model_path: Path) -> None:
    with live_service(model_path, workers=2) as service:
        for _ in range(12):
            with inference_stub(service.grpc_target) as stub:
                assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready
        serving = [line for line in service.log if "gRPC serving on" in line]
    assert len(serving) == 2, service.log_text()
    assert all(line.endswith(service.grpc_target) for line in serving)


def test_a_grpc_port_already_taken_stops_the_service_with_its_reason(model_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        service = LiveService(model_path, grpc_port=str(taken.getsockname()[1]))
        try:
            exit_code = service.process.wait(timeout=60)
        finally:
            service.stop()
    assert exit_code != 0
    assert "is already in use; choose another port with MNIST_GRPC_PORT" in service.log_text()


def test_grpc_calls_keep_working_with_a_connection_reused(model_path: Path) -> None:
    with live_service(model_path) as service, inference_stub(service.grpc_target) as stub:
        for _ in range(3):
            message = pb.ModelInferRequest.FromString(infer_message())
            assert stub.ModelInfer(message, timeout=10).outputs[0].shape == [64, 10]
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(pb.ModelInferRequest(model_name="x"), timeout=10)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
