"""The real ``tritonclient.http``, unchanged, against the service live on 127.0.0.1."""

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import tritonclient.http as triton
import uvicorn
from tritonclient.utils import InferenceServerException

from service.inference.model_card import read_model_card
from service.rest.app import create_rest_app
from service.settings import DEFAULT_MODEL_PATH, Settings
from tests.support.models import write_model

STARTUP_SECONDS = 30.0


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped model when it has been built, else the tiny one."""
    if DEFAULT_MODEL_PATH.exists() and DEFAULT_MODEL_PATH.with_suffix(".json").exists():
        return DEFAULT_MODEL_PATH
    return write_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def model_name(model_path: Path) -> str:
    return read_model_card(model_path.with_suffix(".json")).name


@pytest.fixture(scope="module")
def server_url(model_path: Path) -> Iterator[str]:
    """uvicorn in a thread on a free loopback port, stopped after the module's tests."""
    app = create_rest_app(Settings(model_path=model_path, access_log=False))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=STARTUP_SECONDS)


@pytest.fixture
def client(server_url: str) -> Iterator[triton.InferenceServerClient]:
    client = triton.InferenceServerClient(url=server_url)
    yield client
    client.close()


def reference(model_path: Path, images: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    return session.run(["probabilities"], {"image": images})[0]


def image_input(images: np.ndarray, binary: bool) -> triton.InferInput:
    tensor = triton.InferInput("image", list(images.shape), "UINT8")
    tensor.set_data_from_numpy(images, binary_data=binary)
    return tensor


def test_health(client: triton.InferenceServerClient, model_name: str) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(model_name)
    (version,) = client.get_model_metadata(model_name)["versions"]
    assert client.is_model_ready(model_name, version)
    assert not client.is_model_ready(model_name, version + "0")
    assert not client.is_model_ready("no_such_model")


def test_server_metadata(client: triton.InferenceServerClient) -> None:
    metadata = client.get_server_metadata()
    assert metadata["name"] == "mnist-mlp"
    assert "binary_tensor_data" in metadata["extensions"]


def test_model_metadata(client: triton.InferenceServerClient, model_name: str) -> None:
    metadata = client.get_model_metadata(model_name)
    assert metadata["platform"] == "onnx_onnxv1"
    assert metadata["inputs"] == [{"name": "image", "datatype": "UINT8", "shape": [-1, 28, 28]}]
    assert metadata["outputs"][0] == {
        "name": "probabilities",
        "datatype": "FP32",
        "shape": [-1, 10],
    }
    version = metadata["versions"][0]
    assert client.get_model_metadata(model_name, version) == metadata


@pytest.mark.parametrize("binary_input", [True, False])
@pytest.mark.parametrize("binary_output", [True, False])
def test_infer_equals_onnxruntime(
    client: triton.InferenceServerClient,
    model_path: Path,
    model_name: str,
    binary_input: bool,
    binary_output: bool,
) -> None:
    images = np.random.default_rng(3).integers(0, 256, size=(64, 28, 28), dtype=np.uint8)
    result = client.infer(
        model_name,
        [image_input(images, binary_input)],
        outputs=[triton.InferRequestedOutput("probabilities", binary_data=binary_output)],
        request_id="triton-1",
    )
    np.testing.assert_array_equal(result.as_numpy("probabilities"), reference(model_path, images))
    assert result.get_response()["id"] == "triton-1"


@pytest.mark.parametrize("compression", [None, "gzip", "deflate"])
def test_infer_without_requested_outputs_and_with_compression(
    client: triton.InferenceServerClient,
    model_path: Path,
    model_name: str,
    compression: str | None,
) -> None:
    """No outputs named: tritonclient asks for all of them with ``binary_data_output``."""
    images = np.random.default_rng(4).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    version = client.get_model_metadata(model_name)["versions"][0]
    result = client.infer(
        model_name,
        [image_input(images, binary=True)],
        model_version=version,
        request_compression_algorithm=compression,
        response_compression_algorithm=compression,
    )
    np.testing.assert_array_equal(result.as_numpy("probabilities"), reference(model_path, images))


def test_errors_reach_the_client_and_the_server_goes_on(
    client: triton.InferenceServerClient, model_path: Path, model_name: str
) -> None:
    images = np.zeros((1, 28, 28), dtype=np.uint8)
    with pytest.raises(InferenceServerException, match="unknown model 'nope'") as unknown:
        client.infer("nope", [image_input(images, binary=True)])
    assert unknown.value.status() == "404"
    wrong = triton.InferInput("image", [1, 28, 28], "FP32")
    wrong.set_data_from_numpy(images.astype(np.float32))
    with pytest.raises(InferenceServerException, match="the model takes UINT8") as datatype:
        client.infer(model_name, [wrong])
    assert datatype.value.status() == "400"
    result = client.infer(model_name, [image_input(images, binary=False)])
    np.testing.assert_array_equal(result.as_numpy("probabilities"), reference(model_path, images))
