"""How a unary call's message is read (service.grpc.admission), each refusal with its status and
access-log line: a message that does not arrive in time is DEADLINE_EXCEEDED; a call that ends
without a message is INVALID_ARGUMENT; one that finds no room in the in-flight budget waits, then
is RESOURCE_EXHAUSTED; a small message is served beside them. Streaming methods (reflection,
health's Watch) read theirs under the same bounds."""

import gc
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.grpc.messages import ReceivedModelInfer
from service.grpc.proto import grpc_predict_v2_pb2 as pb
from tests.support.grpc_servers import Served, grpc_settings, inference_stub, served
from tests.support.http2 import FlowingCall
from tests.support.models import write_model

MiB = 1024 * 1024
METHOD = "/inference.GRPCInferenceService/ModelInfer"
RECEIVE_SECONDS = 0.5


@pytest.fixture(scope="module")
def server(model_path: Path) -> Iterator[Served]:
    settings = grpc_settings(
        model_path,
        access_log=True,
        grpc_receive_seconds=RECEIVE_SECONDS,
        max_request_bytes=2 * MiB,
        max_image_bytes=MiB,
        max_image_decode_bytes=4 * MiB,
        max_inflight_bytes=4 * MiB,  # room for one message being read (two copies)
        inflight_wait_seconds=0.2,
    )
    with served(settings) as running:
        yield running


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model(tmp_path_factory.mktemp("grpc-admission"))


def infer_request(count: int, raw_bytes: int | None = None) -> pb.ModelInferRequest:
    """A ModelInfer request of ``count`` blank images (``raw_bytes`` of them, if given)."""
    images = bytes(count * 28 * 28 if raw_bytes is None else raw_bytes)
    message = pb.ModelInferRequest(model_name="mnist_mlp", raw_input_contents=[images])
    message.inputs.add(name="image", datatype="UINT8", shape=[count, 28, 28])
    return message


def small_request() -> pb.ModelInferRequest:
    return infer_request(1)


def logged_soon(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    """The access log has ``text`` within a second (the line is written as the call ends, which
    the client may see first)."""
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        lines = [
            record.getMessage() for record in caplog.records if record.name == "service.access"
        ]
        if any(text in line for line in lines):
            return True
        time.sleep(0.02)
    return False


def test_a_message_that_does_not_arrive_in_time_is_deadline_exceeded(
    server: Served, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="service.access"):
        stalled = FlowingCall(server.port, METHOD, bytes(MiB), held_back=1)
        stalled.start()
        stalled.wait_for_end(RECEIVE_SECONDS + 5.0)
        stalled.close()
        assert logged_soon(caplog, f"{METHOD} DEADLINE_EXCEEDED")
    assert stalled.status == "4"  # DEADLINE_EXCEEDED
    assert RECEIVE_SECONDS <= stalled.ended_after < RECEIVE_SECONDS + 3.0


def test_a_call_that_ends_without_a_message_is_invalid(server: Served) -> None:
    # Not even the message's 5-byte prefix, then the end of the client's side.
    ended = FlowingCall(server.port, METHOD, b"", held_back=5, end_stream=True)
    ended.start()
    ended.wait_for_end(10.0)
    ended.close()
    assert ended.status == "3"  # INVALID_ARGUMENT


def budget_in_use(server: Served) -> float:
    """Bytes the in-flight budget holds now, from ``/metrics``."""
    metrics = httpx.get(f"{server.url}/metrics").text
    (line,) = [line for line in metrics.splitlines() if line.startswith("mnist_inflight_bytes ")]
    return float(line.split()[1])


def wait_until_held(server: Served, nbytes: int, within: float = 5.0) -> None:
    """Return once the budget holds ``nbytes``: the stalled call has its share."""
    deadline = time.monotonic() + within
    while budget_in_use(server) < nbytes:
        if time.monotonic() > deadline:
            raise AssertionError(f"the budget never held {nbytes} bytes")
        time.sleep(0.01)


def test_no_room_in_the_budget_is_resource_exhausted_and_small_calls_still_served(
    server: Served,
) -> None:
    stalled = FlowingCall(server.port, METHOD, bytes(MiB), held_back=1)
    stalled.start()
    try:
        wait_until_held(server, 4 * MiB)  # the whole budget: two copies of the largest message
        with inference_stub(server.target) as stub:
            with pytest.raises(grpc.RpcError) as refused:
                stub.ModelInfer(small_request(), timeout=10)
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "the service is busy" in refused.value.details()
            stalled.wait_for_end(RECEIVE_SECONDS + 5.0)
            assert stub.ModelInfer(small_request(), timeout=10).outputs[0].shape == [1, 10]
    finally:
        stalled.close()


def received_messages_alive(within: float = 1.0) -> int:
    """ModelInfer messages still alive ``within`` seconds (the server's side of a call may end
    just after the client has its answer), without collecting garbage."""
    deadline = time.monotonic() + within
    while (alive := sum(isinstance(o, ReceivedModelInfer) for o in gc.get_objects())) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.05)
    return alive


@pytest.mark.parametrize(
    ("request_message", "code"),
    [
        pytest.param(infer_request(1), None, id="answered"),
        # Its model call needs more than the 4 MiB budget: refused once it has arrived.
        pytest.param(infer_request(1000), grpc.StatusCode.RESOURCE_EXHAUSTED, id="too costly"),
        # Refused by the method itself: the raw bytes do not match the shape.
        pytest.param(infer_request(2, 784), grpc.StatusCode.INVALID_ARGUMENT, id="bad tensor"),
    ],
)
def test_a_message_is_freed_when_its_call_ends_without_the_garbage_collector(
    server: Served, request_message: pb.ModelInferRequest, code: grpc.StatusCode | None
) -> None:
    """Reference counting alone frees what a call received, answered or refused: a message kept
    by a reference cycle (grpc's request iterator, an abort's traceback) stays resident after
    its call has given its share of the budget back, until a collection that may not come for
    long."""
    gc.collect()
    gc.disable()
    try:
        with inference_stub(server.target) as stub:
            for _ in range(3):
                if code is None:
                    assert stub.ModelInfer(request_message, timeout=10).outputs[0].shape[1] == 10
                    continue
                with pytest.raises(grpc.RpcError) as refused:
                    stub.ModelInfer(request_message, timeout=10)
                assert refused.value.code() == code
        alive = received_messages_alive()
    finally:
        gc.enable()
    assert alive == 0


def test_a_client_that_leaves_mid_message_gives_its_share_back(server: Served) -> None:
    leaving = FlowingCall(server.port, METHOD, bytes(MiB), held_back=1)
    leaving.start()
    time.sleep(0.2)  # reading, and holding the whole budget
    leaving.close()
    with inference_stub(server.target) as stub:
        assert stub.ModelInfer(small_request(), timeout=10).outputs[0].shape == [1, 10]


def test_slow_messages_hold_at_most_half_the_budget(model_path: Path) -> None:
    settings = grpc_settings(
        model_path,
        grpc_receive_seconds=10.0,
        grpc_drain_seconds=1.0,
        max_request_bytes=MiB,  # a share of 2 MiB while a message arrives: two fit in half
        max_image_bytes=MiB // 2,
        max_image_decode_bytes=8 * MiB,
        max_inflight_bytes=8 * MiB,
    )
    with served(settings) as running:
        stalled = [
            FlowingCall(running.port, METHOD, bytes(MiB // 2), held_back=1) for _ in range(3)
        ]
        for call in stalled:
            call.start()
        try:
            deadline = time.monotonic() + 5.0
            while all(call.status is None for call in stalled) and time.monotonic() < deadline:
                time.sleep(0.02)
            with inference_stub(running.target) as stub:
                assert stub.ModelInfer(small_request(), timeout=10).outputs[0].shape == [1, 10]
            statuses = sorted(str(call.status) for call in stalled)
            refused = [call for call in stalled if call.status is not None]
        finally:
            for call in stalled:
                call.close()
    assert statuses == ["4", "None", "None"]  # one refused once slow, two still arriving
    assert 0.9 < refused[0].ended_after < 4.0


@pytest.mark.parametrize(
    "method",
    [
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/grpc.health.v1.Health/Watch",
    ],
)
def test_a_streaming_call_whose_message_does_not_arrive_is_deadline_exceeded(
    server: Served, method: str
) -> None:
    stalled = FlowingCall(server.port, method, bytes(MiB), held_back=1)
    stalled.start()
    stalled.wait_for_end(RECEIVE_SECONDS + 5.0)
    stalled.close()
    assert stalled.status == "4"  # DEADLINE_EXCEEDED
    assert RECEIVE_SECONDS <= stalled.ended_after < RECEIVE_SECONDS + 3.0


def test_health_watch_streams_the_status(server: Served) -> None:
    with grpc.insecure_channel(server.target) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(), timeout=10
        )
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        watch.cancel()
