"""API keys over gRPC: the same core check as REST, the key in the ``authorization`` metadata;
health stays open, reflection needs the key; a missing or wrong key is UNAUTHENTICATED with
REST's message."""

from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from service.grpc.proto import grpc_predict_v2_pb2 as pb
from tests.support.grpc_servers import Served, grpc_settings, inference_stub, served
from tests.support.models import write_model

KEY = "grpc-test-key"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    model_path = write_model(tmp_path_factory.mktemp("grpc-keys"))
    with served(grpc_settings(model_path, api_keys=[KEY])) as running:
        yield running


def metadata_request() -> pb.ModelMetadataRequest:
    return pb.ModelMetadataRequest(name="mnist_mlp")


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ((), "needs an API key: send the header 'Authorization: Bearer <key>'"),
        ((("authorization", "Bearer wrong"),), "not one of this service's"),
    ],
    ids=["missing", "wrong"],
)
def test_a_call_without_the_key_is_unauthenticated(
    server: Served, metadata: tuple, message: str
) -> None:
    with inference_stub(server.target) as stub, pytest.raises(grpc.RpcError) as caught:
        stub.ModelMetadata(metadata_request(), metadata=metadata, timeout=10)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert message in caught.value.details()


def test_a_call_with_the_key_is_served(server: Served) -> None:
    with inference_stub(server.target) as stub:
        answer = stub.ModelMetadata(
            metadata_request(), metadata=(("authorization", f"Bearer {KEY}"),), timeout=10
        )
    assert answer.name == "mnist_mlp"


def test_health_needs_no_key(server: Served) -> None:
    with inference_stub(server.target) as stub:
        assert stub.ServerLive(pb.ServerLiveRequest(), timeout=10).live
        assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready
        assert stub.ModelReady(pb.ModelReadyRequest(name="mnist_mlp"), timeout=10).ready
    with grpc.insecure_channel(server.target) as channel:
        check = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )
    assert check.status == health_pb2.HealthCheckResponse.SERVING


def reflection_names(target: str, metadata: tuple = ()) -> set[str]:
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    with grpc.insecure_channel(target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        (answer,) = stub.ServerReflectionInfo(iter([request]), metadata=metadata, timeout=10)
    return {service.name for service in answer.list_services_response.service}


def test_reflection_needs_the_key(server: Served) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        reflection_names(server.target)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "needs an API key" in caught.value.details()
    names = reflection_names(server.target, (("authorization", f"Bearer {KEY}"),))
    assert "inference.GRPCInferenceService" in names
