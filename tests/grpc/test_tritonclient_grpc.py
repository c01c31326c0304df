"""The Open Inference Protocol over gRPC, through tritonclient.grpc against a live server: the
answers of onnxruntime itself, and every refusal with the code and the message REST gives."""

from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import onnxruntime
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

from service.inference.model_card import read_model_card
from tests.support.grpc_servers import Served, grpc_settings, served

MODEL = "mnist_mlp"


@pytest.fixture(scope="module")
def server(shipped_model_path: Path) -> Iterator[Served]:
    with served(grpc_settings(shipped_model_path)) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: Served) -> Iterator[triton_grpc.InferenceServerClient]:
    with triton_grpc.InferenceServerClient(server.target) as grpc_client:
        yield grpc_client


@pytest.fixture(scope="module")
def rest_client(server: Served) -> Iterator[triton_http.InferenceServerClient]:
    with triton_http.InferenceServerClient(server.url.removeprefix("http://")) as http_client:
        yield http_client


@pytest.fixture(scope="module")
def version(shipped_model_path: Path) -> str:
    return read_model_card(shipped_model_path.with_suffix(".json")).version


def images(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(count, 28, 28), dtype=np.uint8)


def grpc_input(array: np.ndarray, datatype: str = "UINT8") -> triton_grpc.InferInput:
    tensor = triton_grpc.InferInput("image", list(array.shape), datatype)
    tensor.set_data_from_numpy(array)
    return tensor


def test_health_and_readiness(client: triton_grpc.InferenceServerClient, version: str) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(MODEL)
    assert client.is_model_ready(MODEL, model_version=version)


def test_metadata_is_the_rest_metadata(
    client: triton_grpc.InferenceServerClient,
    rest_client: triton_http.InferenceServerClient,
    version: str,
) -> None:
    server = client.get_server_metadata(as_json=True)
    assert {key: server[key] for key in ("name", "version")} == {
        key: rest_client.get_server_metadata()[key] for key in ("name", "version")
    }
    rest = rest_client.get_model_metadata(MODEL)
    for requested in ("", version):
        metadata = client.get_model_metadata(MODEL, model_version=requested, as_json=True)
        assert metadata["name"] == rest["name"] and metadata["versions"] == rest["versions"]
        assert metadata["platform"] == rest["platform"]
        for kind in ("inputs", "outputs"):
            assert [{**tensor, "shape": [int(size) for size in tensor["shape"]]}
                    for tensor in metadata[kind]] == rest[kind]  # fmt: skip


@pytest.mark.parametrize("count", [1, 64, 1024])
def test_infer_answers_what_onnxruntime_answers(
    client: triton_grpc.InferenceServerClient, shipped_model_path: Path, count: int
) -> None:
    batch = images(count, seed=count)
    session = onnxruntime.InferenceSession(str(shipped_model_path))
    probabilities, scores = session.run(["probabilities", "digit_score"], {"image": batch})
    answer = client.infer(MODEL, [grpc_input(batch)], request_id=f"batch-{count}")
    np.testing.assert_allclose(
        answer.as_numpy("probabilities"), probabilities, rtol=1e-5, atol=1e-7
    )
    np.testing.assert_allclose(answer.as_numpy("digit_score"), scores, rtol=1e-5, atol=1e-7)
    response = answer.get_response()
    assert response.id == f"batch-{count}" and response.model_name == MODEL
    assert len(response.raw_output_contents) == 2  # every output, when none is named


def test_a_version_and_the_outputs_asked_for_are_honoured(
    client: triton_grpc.InferenceServerClient, version: str
) -> None:
    outputs = [triton_grpc.InferRequestedOutput("probabilities")]
    answer = client.infer(MODEL, [grpc_input(images(3))], model_version=version, outputs=outputs)
    assert answer.get_response().model_version == version
    assert answer.as_numpy("probabilities").shape == (3, 10)


def refusal(call: Callable[[], object]) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as caught:
        call()
    return caught.value


CASES = {
    "wrong datatype": (
        "StatusCode.INVALID_ARGUMENT",
        lambda module: [_input(module, images(2).astype(np.float32), "FP32")],
        {},
    ),
    "wrong shape": (
        "StatusCode.INVALID_ARGUMENT",
        lambda module: [_input(module, np.zeros((2, 27, 28), np.uint8))],
        {},
    ),
    "unknown output": (
        "StatusCode.INVALID_ARGUMENT",
        lambda module: [_input(module, images(1))],
        {"outputs": "logits"},
    ),
    "unknown model": (
        "StatusCode.NOT_FOUND",
        lambda module: [_input(module, images(1))],
        {"model_name": "mnist_cnn"},
    ),
    "unknown version": (
        "StatusCode.NOT_FOUND",
        lambda module: [_input(module, images(1))],
        {"model_version": "no-such-version"},
    ),
    "too many images": (
        "StatusCode.RESOURCE_EXHAUSTED",
        lambda module: [_input(module, np.zeros((16_385, 28, 28), np.uint8))],
        {},
    ),
}


def _input(module: ModuleType, array: np.ndarray, datatype: str = "UINT8") -> Any:
    tensor = module.InferInput("image", list(array.shape), datatype)
    if module is triton_http:
        tensor.set_data_from_numpy(array, binary_data=True)
    else:
        tensor.set_data_from_numpy(array)
    return tensor


def _infer(client: Any, module: ModuleType, case: str) -> Any:
    _, inputs, options = CASES[case]
    outputs = options.get("outputs")
    return client.infer(
        options.get("model_name", MODEL),
        inputs(module),
        model_version=options.get("model_version", ""),
        outputs=[module.InferRequestedOutput(outputs)] if outputs else None,
    )


@pytest.mark.parametrize("case", list(CASES))
def test_each_refusal_has_its_code_and_the_rest_message(
    client: triton_grpc.InferenceServerClient,
    rest_client: triton_http.InferenceServerClient,
    case: str,
) -> None:
    over_grpc = refusal(lambda: _infer(client, triton_grpc, case))
    over_rest = refusal(lambda: _infer(rest_client, triton_http, case))
    assert over_grpc.status() == CASES[case][0]
    assert over_grpc.message() == over_rest.message()
    assert client.infer(MODEL, [grpc_input(images(1))]).as_numpy("probabilities").shape == (1, 10)


def test_a_message_over_the_request_limit_is_resource_exhausted(
    client: triton_grpc.InferenceServerClient,
) -> None:
    too_big = np.zeros((32 * 1024 * 1024 // 784 + 1, 28, 28), np.uint8)
    error = refusal(lambda: client.infer(MODEL, [grpc_input(too_big)]))
    assert error.status() == "StatusCode.RESOURCE_EXHAUSTED"
    assert str(32 * 1024 * 1024) in error.message()
    assert client.is_server_ready()
