"""Triton's own tools, unchanged, over both transports: the exact calls perf_analyzer makes
(server metadata, model configuration, inference of ``-b 8`` batches, statistics) and the rest of
tritonclient's model configuration, statistics and repository API; and gRPC methods the server
does not serve, answered UNIMPLEMENTED with a metric and an access-log line."""

import logging
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

from service.grpc.admission import MARKER_METHOD
from service.grpc.observer import CallObserver
from service.inference.metrics import Metrics
from service.inference.model_card import read_model_card
from tests.support.event_loop import run_on_own_thread
from tests.support.grpc_servers import Served, grpc_settings, served

MODEL = "mnist_mlp"
INFERENCE = "inference.GRPCInferenceService"
MAX_BATCH_SIZE = 512
PERF_ANALYZER_BATCH = 8
TRANSPORTS = ["http", "grpc"]
TEXT_FIELDS = ("name", "version")
Client = triton_http.InferenceServerClient | triton_grpc.InferenceServerClient


@pytest.fixture(scope="module")
def server(shipped_model_path: Path) -> Iterator[Served]:
    # The shipped repository: every version of the model, as ``python -m service`` serves it.
    settings = grpc_settings(
        shipped_model_path.parent,
        max_batch_size=MAX_BATCH_SIZE,
        model_control=True,
        access_log=True,
    )
    with served(settings) as running:
        yield running


@pytest.fixture(scope="module")
def version(shipped_model_path: Path) -> str:
    return read_model_card(shipped_model_path.with_suffix(".json")).version


@pytest.fixture(scope="module", params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def client(server: Served, transport: str) -> Iterator[Client]:
    if transport == "http":
        with triton_http.InferenceServerClient(server.url.removeprefix("http://")) as http:
            yield http
    else:
        with triton_grpc.InferenceServerClient(server.target) as grpc_client:
            yield grpc_client


def as_json(client: Client, method: str, *arguments: Any, **keywords: Any) -> Any:
    """The answer as JSON over both transports (tritonclient.grpc's ``as_json``)."""
    if isinstance(client, triton_grpc.InferenceServerClient):
        keywords["as_json"] = True
    answer = getattr(client, method)(*arguments, **keywords)
    return answer.get("config", answer) if method == "get_model_config" else answer


def numbers(document: Any) -> Any:
    """tritonclient.grpc's JSON gives 64-bit integers as strings (protobuf's JSON mapping);
    names and versions are strings that may hold only digits, and stay strings."""
    if isinstance(document, dict):
        return {
            key: value if key in TEXT_FIELDS else numbers(value) for key, value in document.items()
        }
    if isinstance(document, list):
        return [numbers(value) for value in document]
    if isinstance(document, str) and document.isdigit():
        return int(document)
    return document


def infer_batch(client: Client, rows: int, seed: int = 0) -> np.ndarray:
    """One request of ``rows`` images in binary form, as perf_analyzer sends them."""
    images = np.random.default_rng(seed).integers(0, 256, size=(rows, 28, 28), dtype=np.uint8)
    module = triton_http if isinstance(client, triton_http.InferenceServerClient) else triton_grpc
    tensor = module.InferInput("image", list(images.shape), "UINT8")
    tensor.set_data_from_numpy(images)
    result = client.infer(MODEL, [tensor])
    return result.as_numpy("probabilities")


def statistics_of(client: Client, version: str) -> dict[str, Any]:
    answer = numbers(as_json(client, "get_inference_statistics", MODEL, version))
    (statistics,) = answer["model_stats"]
    return statistics


def test_server_metadata_lists_exactly_the_extensions_served(client: Client) -> None:
    extensions = as_json(client, "get_server_metadata")["extensions"]
    assert sorted(extensions) == [
        "binary_tensor_data",
        "model_configuration",
        "model_repository",
        "statistics",
    ]


def test_model_configuration_is_what_perf_analyzer_reads(client: Client, version: str) -> None:
    for requested in ("", version):
        config = numbers(as_json(client, "get_model_config", MODEL, requested))
        assert config["name"] == MODEL
        assert (config["platform"], config["backend"]) == ("onnxruntime_onnx", "onnxruntime")
        assert config["max_batch_size"] == MAX_BATCH_SIZE
        assert config["input"] == [{"name": "image", "data_type": "TYPE_UINT8", "dims": [28, 28]}]
        assert config["output"][0] == {
            "name": "probabilities",
            "data_type": "TYPE_FP32",
            "dims": [10],
        }
        assert "dynamic_batching" in config
        assert "all" in config["version_policy"]


def test_a_dynamically_quantised_version_is_configured_without_dynamic_batching(
    client: Client, shipped_model_path: Path
) -> None:
    models = shipped_model_path.parent.glob("*.onnx")
    cards = [read_model_card(model.with_suffix(".json")) for model in models]
    quantised = [card.version for card in cards if card.quantization]
    if not quantised:
        pytest.skip("the shipped repository has no int8 version")
    assert set(quantised) <= set(as_json(client, "get_model_metadata", MODEL)["versions"])
    config = as_json(client, "get_model_config", MODEL, quantised[0])
    assert "dynamic_batching" not in config


def test_unknown_models_and_versions_are_refused(client: Client) -> None:
    for method in ("get_model_config", "get_inference_statistics"):
        with pytest.raises(InferenceServerException, match="unknown model 'nine'"):
            getattr(client, method)("nine")
        with pytest.raises(InferenceServerException, match="has no version 'nine'"):
            getattr(client, method)(MODEL, "nine")


def test_statistics_count_what_a_batch_of_eight_did(
    client: Client, server: Served, version: str
) -> None:
    before = statistics_of(client, version)
    metrics_before = inference_metric(server, "sum"), inference_metric(server, "count")
    probabilities = infer_batch(client, PERF_ANALYZER_BATCH)
    assert probabilities.shape == (PERF_ANALYZER_BATCH, 10)
    after = statistics_of(client, version)
    assert after["inference_count"] - before["inference_count"] == PERF_ANALYZER_BATCH
    assert after["execution_count"] - before["execution_count"] == 1
    assert after["last_inference"] >= before["last_inference"] > 0 or before["last_inference"] == 0
    phases = ("success", "queue", "compute_input", "compute_infer", "compute_output")
    for phase in phases:
        grown = after["inference_stats"][phase]["count"] - before["inference_stats"][phase]["count"]
        assert grown == 1, phase
        assert after["inference_stats"][phase]["ns"] > before["inference_stats"][phase]["ns"]
    assert after["inference_stats"]["fail"] == before["inference_stats"]["fail"]
    (eight,) = [batch for batch in after["batch_stats"] if batch["batch_size"] == 8]
    assert eight["compute_infer"]["count"] >= 1 and eight["compute_infer"]["ns"] > 0
    executions = sum(batch["compute_infer"]["count"] for batch in after["batch_stats"])
    assert executions == after["execution_count"]
    # /metrics counts the same: its batch-size histogram got one call of the same 8 images.
    assert inference_metric(server, "sum") - metrics_before[0] == PERF_ANALYZER_BATCH
    assert inference_metric(server, "count") - metrics_before[1] == 1


def inference_metric(server: Served, part: str) -> float:
    """``mnist_inference_batch_size_<part>`` summed over every version of the model."""
    text = httpx.get(f"{server.url}/metrics").text
    name = f"mnist_inference_batch_size_{part}"
    lines = [line for line in text.splitlines() if line.startswith(name)]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


def test_a_refused_request_counts_as_a_failure(client: Client, version: str) -> None:
    before = statistics_of(client, version)
    module = triton_http if isinstance(client, triton_http.InferenceServerClient) else triton_grpc
    tensor = module.InferInput("image", [1, 28, 28], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 28, 28), dtype=np.float32))
    with pytest.raises(InferenceServerException):
        client.infer(MODEL, [tensor], model_version=version)
    after = statistics_of(client, version)
    assert (
        after["inference_stats"]["fail"]["count"] == before["inference_stats"]["fail"]["count"] + 1
    )
    assert after["inference_count"] == before["inference_count"]


def test_statistics_of_every_model_is_not_a_model_named_stats(client: Client, version: str) -> None:
    every = numbers(as_json(client, "get_inference_statistics"))["model_stats"]
    assert {(entry["name"], entry["version"]) for entry in every} >= {(MODEL, version)}
    model = numbers(as_json(client, "get_inference_statistics", MODEL))["model_stats"]
    assert {entry["version"] for entry in model} == {entry["version"] for entry in every}


def test_repository_index_load_and_unload(client: Client, version: str) -> None:
    index = as_json(client, "get_model_repository_index")
    entries = index if isinstance(index, list) else index.get("models", [])
    assert {"name": MODEL, "version": version, "state": "READY"}.items() <= next(
        entry for entry in entries if entry["version"] == version
    ).items()
    client.unload_model(MODEL)
    assert not client.is_model_ready(MODEL)
    client.load_model(MODEL)
    assert client.is_model_ready(MODEL)
    assert infer_batch(client, 1).shape == (1, 10)


def test_unimplemented_methods_are_counted_and_logged(
    server: Served, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.INFO, logger="service.access"),
        triton_grpc.InferenceServerClient(server.target) as client,
        grpc.insecure_channel(server.target) as channel,
    ):
        with pytest.raises(InferenceServerException, match=r"UNIMPLEMENTED|not implemented"):
            client.get_system_shared_memory_status()
        stranger = channel.unary_unary("/elsewhere.Service/Anything")
        with pytest.raises(grpc.RpcError) as refused:
            stranger(b"", timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
    lines = [record.getMessage() for record in caplog.records if record.name == "service.access"]
    shared_memory = f"/{INFERENCE}/SystemSharedMemoryStatus"
    assert any(line.startswith(f"gRPC {shared_memory} UNIMPLEMENTED ") for line in lines), lines
    assert any(line.startswith("gRPC /elsewhere.Service/Anything UNIMPLEMENTED") for line in lines)
    metrics = httpx.get(f"{server.url}/metrics").text
    counted = f'mnist_grpc_requests_total{{code="UNIMPLEMENTED",method="{shared_memory[1:]}"}} 1.0'
    assert counted in metrics
    assert 'mnist_grpc_requests_total{code="UNIMPLEMENTED",method="unknown"} 1.0' in metrics


def test_the_servers_own_calls_are_neither_counted_nor_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The drain's marker, which a stopping server sends itself, is no client's call."""
    metrics = Metrics()
    observer = CallObserver(metrics, True, internal_methods=frozenset({MARKER_METHOD}))

    async def nobody_serves(details: Any) -> None:
        return None

    def details(method: str) -> Any:
        return SimpleNamespace(method=method, invocation_metadata=())

    with caplog.at_level(logging.INFO, logger="service.access"):
        assert (
            run_on_own_thread(observer.intercept_service(nobody_serves, details(MARKER_METHOD)))
            is None
        )
        stranger = run_on_own_thread(observer.intercept_service(nobody_serves, details("/x.Y/Z")))
    assert stranger is not None and stranger.stream_stream is not None
    assert not [record for record in caplog.records if MARKER_METHOD in record.getMessage()]
