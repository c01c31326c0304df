"""The protocol's repository methods over gRPC: load and unload on the same core as REST."""

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import tritonclient.grpc as triton_grpc
from tritonclient.utils import InferenceServerException

from service.grpc.proto import grpc_predict_v2_pb2 as pb
from tests.support.grpc_servers import Served, grpc_settings, inference_stub, served
from tests.support.models import build_tiny_model, write_model


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    write_model(tmp_path, build_tiny_model(seed=1), stem="first", version="1")
    return tmp_path


def serve_repository(folder: Path, **overrides: object):
    return served(grpc_settings(folder, **({"model_control": True} | overrides)))


@pytest.fixture
def server(repository: Path) -> Iterator[Served]:
    with serve_repository(repository) as server:
        yield server


def ready(stub, version: str = "") -> bool:
    return stub.ModelReady(pb.ModelReadyRequest(name="mnist_mlp", version=version)).ready


def test_unload_then_load_round_trip_and_a_new_version(server: Served, repository: Path) -> None:
    with inference_stub(server.target) as stub:
        unloaded = stub.RepositoryModelUnload(
            pb.RepositoryModelUnloadRequest(model_name="mnist_mlp")
        )
        assert (unloaded.model_name, unloaded.isUnloaded) == ("mnist_mlp", True)
        assert not ready(stub)
        write_model(repository, build_tiny_model(seed=2), stem="second", version="2")
        loaded = stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="mnist_mlp"))
        assert (loaded.model_name, loaded.isLoaded) == ("mnist_mlp", True)
        assert ready(stub, "1") and ready(stub, "2")


def test_a_failed_load_is_invalid_argument_naming_the_file(
    server: Served, repository: Path
) -> None:
    (repository / "first.onnx").write_bytes(build_tiny_model(seed=9).SerializeToString())
    with inference_stub(server.target) as stub:
        with pytest.raises(grpc.RpcError) as caught:
            stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="mnist_mlp"))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "model first.onnx: sha256 differs" in caught.value.details()
        assert str(repository) not in caught.value.details()
        assert ready(stub, "1")
        with pytest.raises(grpc.RpcError) as unknown:
            stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="nope"))
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


def test_model_control_is_off_by_default_and_leaves_them_unimplemented(repository: Path) -> None:
    with (
        served(grpc_settings(repository)) as server,
        inference_stub(server.target) as stub,
    ):
        with pytest.raises(grpc.RpcError) as caught:
            stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="mnist_mlp"))
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert ready(stub, "1")


def test_tritonclient_grpc_unloads_and_loads_in_tritons_message_shape(server: Served) -> None:
    """Triton's repository messages name the model in another field than KServe's."""
    with triton_grpc.InferenceServerClient(server.target) as client:
        client.unload_model("mnist_mlp")
        assert not client.is_model_ready("mnist_mlp")
        client.load_model("mnist_mlp")
        assert client.is_model_ready("mnist_mlp", model_version="1")
        with pytest.raises(InferenceServerException) as caught:
            client.unload_model("mnist_cnn")
    assert caught.value.status() == "StatusCode.NOT_FOUND"
