"""OpenTelemetry traces over REST and gRPC, captured by the SDK's in-memory exporter: one server
span per request continuing the caller's W3C traceparent, with the core's ``inference`` span
(model name and version) and its phases under it; off unless the OTEL_* variables ask."""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc

from service.__main__ import main
from service.inference import tracing
from tests.support.grpc_servers import Served, grpc_settings, served

sdk_trace = pytest.importorskip("opentelemetry.sdk.trace", reason="the tracing extra is absent")
pytest.importorskip("opentelemetry.instrumentation.grpc", reason="the tracing extra is absent")
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
PHASES = {"decode", "batch wait", "model call", "outputs"}
WAIT_SECONDS = 5.0


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture(scope="module")
def server(exporter: InMemorySpanExporter, shipped_model_path: Path) -> Iterator[Served]:
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    def start_tracing(environ: Any = None) -> Any:
        tracing.enable(provider)
        return provider

    # The app asks for its provider once, as it is built.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tracing, "start_tracing", start_tracing)
        serving = served(grpc_settings(shipped_model_path))
        running = serving.__enter__()
    try:
        yield running
    finally:
        serving.__exit__(None, None, None)
        tracing.disable()


def spans_of(exporter: InMemorySpanExporter, server_span_kind: str) -> list[Any]:
    """The spans of the caller's trace, once its server span (which ends last) is exported."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        spans = [span for span in exporter.get_finished_spans() if _trace_id(span) == TRACE_ID]
        if any(span.kind.name == server_span_kind for span in spans):
            return spans
        time.sleep(0.01)
    pytest.fail(f"no {server_span_kind} span of the trace was exported")


def _trace_id(span: Any) -> str:
    return format(span.context.trace_id, "032x")


def check_the_tree(spans: list[Any]) -> None:
    by_name = {span.name: span for span in spans}
    (server,) = [span for span in spans if span.kind.name == "SERVER"]
    assert format(server.parent.span_id, "016x") == PARENT_ID
    inference = by_name["inference"]
    assert inference.attributes["model.name"] == "mnist_mlp"
    assert inference.attributes["model.version"]
    assert inference.attributes["inference.images"] == 2
    assert inference.parent.span_id in {span.context.span_id for span in spans}
    for phase in PHASES:
        assert by_name[phase].parent.span_id == inference.context.span_id, phase
        assert inference.start_time <= by_name[phase].start_time <= by_name[phase].end_time
        assert by_name[phase].end_time <= inference.end_time
    for step in ("read request", "encode response"):
        assert _trace_id(by_name[step]) == TRACE_ID


def test_a_rest_request_is_one_trace_with_its_phases(
    server: Served, exporter: InMemorySpanExporter
) -> None:
    exporter.clear()
    body = {"inputs": [{"name": "image", "shape": [2, 28, 28], "datatype": "UINT8"}]}
    body["inputs"][0]["data"] = [0] * (2 * 28 * 28)
    answer = httpx.post(
        f"{server.url}/v2/models/mnist_mlp/infer", json=body, headers={"traceparent": TRACEPARENT}
    )
    assert answer.status_code == 200
    check_the_tree(spans_of(exporter, "SERVER"))


def test_a_grpc_call_is_one_trace_with_its_phases(
    server: Served, exporter: InMemorySpanExporter
) -> None:
    exporter.clear()
    images = np.zeros((2, 28, 28), dtype=np.uint8)
    tensor = triton_grpc.InferInput("image", list(images.shape), "UINT8")
    tensor.set_data_from_numpy(images)
    with triton_grpc.InferenceServerClient(server.target) as client:
        client.infer("mnist_mlp", [tensor], headers={"traceparent": TRACEPARENT})
    spans = spans_of(exporter, "SERVER")
    check_the_tree(spans)
    (server_span,) = [span for span in spans if span.kind.name == "SERVER"]
    assert "ModelInfer" in server_span.name


def test_an_unimplemented_method_is_still_answered_unimplemented(server: Served) -> None:
    with grpc.insecure_channel(server.target) as channel:
        stranger = channel.unary_unary("/elsewhere.Service/Anything")
        with pytest.raises(grpc.RpcError) as refused:
            stranger(b"", timeout=10, metadata=[("traceparent", TRACEPARENT)])
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_a_refused_request_ends_its_inference_span_in_error(
    server: Served, exporter: InMemorySpanExporter
) -> None:
    exporter.clear()
    body = {"inputs": [{"name": "image", "shape": [1, 27, 28], "datatype": "UINT8"}]}
    body["inputs"][0]["data"] = [0] * (27 * 28)
    answer = httpx.post(
        f"{server.url}/v2/models/mnist_mlp/infer", json=body, headers={"traceparent": TRACEPARENT}
    )
    assert answer.status_code == 400
    spans = spans_of(exporter, "SERVER")
    (inference,) = [span for span in spans if span.name == "inference"]
    assert inference.status.status_code.name == "ERROR"
    assert not PHASES & {span.name for span in spans} - {"decode"}


@pytest.mark.parametrize(
    ("environ", "requested"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"}, False),
    ],
)
def test_tracing_is_off_unless_the_otel_variables_ask(
    environ: dict[str, str], requested: bool
) -> None:
    assert tracing.tracing_requested(environ) is requested
    if not requested:
        assert tracing.start_tracing(environ) is None


def test_an_otlp_provider_is_configured_from_the_variables() -> None:
    environ = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    before = tracing.STATE.tracer
    provider = tracing.start_tracing(environ)
    try:
        assert provider is not None and tracing.enabled()
        assert provider.resource.attributes["service.name"] == "mnist-mlp"
    finally:
        tracing.STATE.tracer = before
        provider.shutdown()


def test_without_the_sdk_the_server_refuses_to_start_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setitem(__import__("sys").modules, "opentelemetry.sdk.trace", None)
    assert main(["--port", "0"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "mnist-mlp[tracing]" in line
