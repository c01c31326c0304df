"""The gRPC server around the service: grpc.health.v1, reflection, metrics beside HTTP's, one
access-log line per call, the off switch, and UNAVAILABLE while no model is loaded."""

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from service.grpc.proto import grpc_predict_v2_pb2 as pb
from service.grpc.proto import grpc_predict_v2_pb2_grpc as pb_grpc
from service.grpc.proto import grpc_service_pb2, model_config_pb2
from service.grpc.server import GrpcServer
from service.inference.dataplane import DataPlane
from service.inference.metrics import Metrics
from tests.support.event_loop import run_on_own_thread
from tests.support.grpc_servers import Served, grpc_settings, inference_stub, served
from tests.support.models import write_model

INFERENCE = "inference.GRPCInferenceService"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model(tmp_path_factory.mktemp("grpc-server"))


@pytest.fixture(scope="module")
def server(model_path: Path) -> Iterator[Served]:
    with served(grpc_settings(model_path, access_log=True)) as running:
        yield running


def health_status(target: str, service: str) -> int:
    with grpc.insecure_channel(target) as channel:
        request = health_pb2.HealthCheckRequest(service=service)
        return health_pb2_grpc.HealthStub(channel).Check(request, timeout=10).status


def test_health_checks_liveness_and_readiness(server: Served) -> None:
    assert health_status(server.target, "") == SERVING
    assert health_status(server.target, INFERENCE) == SERVING
    with pytest.raises(grpc.RpcError) as caught:
        health_status(server.target, "no.such.Service")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def reflect(
    target: str, request: reflection_pb2.ServerReflectionRequest
) -> reflection_pb2.ServerReflectionResponse:
    with grpc.insecure_channel(target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        return next(iter(stub.ServerReflectionInfo(iter([request]), timeout=10)))


def test_reflection_lists_the_services_and_describes_the_protocol(server: Served) -> None:
    listed = reflect(server.target, reflection_pb2.ServerReflectionRequest(list_services=""))
    names = {service.name for service in listed.list_services_response.service}
    assert names == {INFERENCE, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}
    described = reflect(
        server.target,
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=INFERENCE),
    )
    # Triton's definition of the service, and the file it imports.
    served = set(described.file_descriptor_response.file_descriptor_proto)
    assert served == {
        grpc_service_pb2.DESCRIPTOR.serialized_pb,
        model_config_pb2.DESCRIPTOR.serialized_pb,
    }


def test_calls_are_counted_by_method_and_code_beside_http(server: Served) -> None:
    with inference_stub(server.target) as stub:
        stub.ServerLive(pb.ServerLiveRequest())
        with pytest.raises(grpc.RpcError):
            stub.ModelMetadata(pb.ModelMetadataRequest(name="unknown"))
    metrics = httpx.get(f"{server.url}/metrics").text
    method = f"{INFERENCE}/ModelMetadata"
    assert f'mnist_grpc_requests_total{{code="NOT_FOUND",method="{method}"}}' in metrics
    assert f'mnist_grpc_requests_total{{code="OK",method="{INFERENCE}/ServerLive"}}' in metrics
    assert f'mnist_grpc_request_duration_seconds_count{{method="{method}"}}' in metrics
    assert 'mnist_rejected_inputs_total{reason="unknown_model"}' in metrics
    assert "mnist_http_requests_total" in metrics


def test_each_call_writes_one_access_log_line(
    server: Served, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.INFO, logger="service.access"),
        inference_stub(server.target) as stub,
    ):
        stub.ServerReady(pb.ServerReadyRequest())
        with pytest.raises(grpc.RpcError):
            stub.ModelReady(pb.ModelReadyRequest(name="mnist_mlp", version="nine"))
    lines = [record.getMessage() for record in caplog.records if record.name == "service.access"]
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"gRPC /{INFERENCE}/ServerReady OK ")
    assert lines[1].startswith(f"gRPC /{INFERENCE}/ModelReady NOT_FOUND ")
    assert lines[1].endswith("ms")


def test_grpc_can_be_turned_off(model_path: Path) -> None:
    settings = grpc_settings(model_path, grpc_enabled=False)
    with served(settings) as running:
        assert httpx.get(f"{running.url}/v2/health/ready").status_code == 200
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", settings.grpc_port), timeout=5).close()


def test_without_a_model_inference_is_unavailable_and_readiness_false(model_path: Path) -> None:
    """The state a model unload or a slow start leaves: live, not ready, UNAVAILABLE."""
    settings = grpc_settings(model_path)
    dataplane = DataPlane(settings, Metrics())  # no model loaded

    async def scenario() -> None:
        server = GrpcServer(dataplane)
        port = await server.start()
        target = f"127.0.0.1:{port}"
        async with grpc.aio.insecure_channel(target) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            assert (await stub.ServerLive(pb.ServerLiveRequest())).live
            assert not (await stub.ServerReady(pb.ServerReadyRequest())).ready
            assert not (await stub.ModelReady(pb.ModelReadyRequest(name="mnist_mlp"))).ready
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.ModelInfer(pb.ModelInferRequest(model_name="mnist_mlp"))
            health = health_pb2_grpc.HealthStub(channel)
            checks = [health_pb2.HealthCheckRequest(service=name) for name in ("", INFERENCE)]
            statuses = [(await health.Check(check)).status for check in checks]
        await server.stop()
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert caught.value.details() == "the models are not loaded yet; retry in a moment"
        assert statuses == [SERVING, NOT_SERVING]

    run_on_own_thread(scenario())
