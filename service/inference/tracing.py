"""OpenTelemetry tracing: off unless the standard ``OTEL_*`` environment variables ask for it.

On when ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp``, ``console``) or an OTLP endpoint is
set (``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``); off with
``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``. Everything else (endpoint,
headers, protocol, sampler, batch sizes, service name, resource attributes) is read by the
OpenTelemetry SDK itself from its variables. The SDK and exporter are the ``tracing`` extra.

Nothing of OpenTelemetry is imported until tracing is on. The transports' instrumentation
(FastAPI's native telemetry, OpenTelemetry's gRPC interceptor) makes one server span per
request and continues the caller's W3C ``traceparent``. Under it the core adds ``inference``
(model name and version as attributes) with one child span per phase the statistics already
time: ``decode``, ``batch wait``, ``model call``, ``outputs``; the
transports add ``read request`` and ``encode response``. The phases are recorded once a request
ends, from the ``perf_counter_ns`` readings the statistics take anyway, so tracing adds no clock
reading to the hot path, and when it is off one ``is None`` test is all a request pays.
"""

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

TRACER_NAME = "mnist-mlp"
DEFAULT_SERVICE_NAME = "mnist-mlp"
INSTALL_HINT = "pip install 'mnist-mlp[tracing]'"
# The exporters the SDK's OTEL_TRACES_EXPORTER names, and where they live.
OTLP_PROTOCOL_EXPORTERS = {
    "http/protobuf": "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "grpc": "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
}
_NOT_TRACED = contextlib.nullcontext()


class TracingUnavailable(RuntimeError):
    """Tracing is asked for, but the OpenTelemetry SDK or an exporter is not installed."""


class _State:
    """The tracer while tracing is on (None when off), and the offset from
    ``perf_counter_ns`` to the epoch nanoseconds OpenTelemetry's timestamps use."""

    tracer: Any = None
    epoch_offset_ns = 0


STATE = _State()


def tracing_requested(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the ``OTEL_*`` variables ask for traces (see the module's docstring)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporters:
        return exporters != "none"
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def _exporter(name: str, environ: Mapping[str, str]) -> Any:
    """One span exporter the SDK's variables name; each reads its own ``OTEL_*`` settings."""
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name != "otlp":
        raise TracingUnavailable(f"OTEL_TRACES_EXPORTER={name!r}: use otlp, console or none")
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )
    module_name = OTLP_PROTOCOL_EXPORTERS.get(protocol)
    if module_name is None:
        raise TracingUnavailable(f"OTLP protocol {protocol!r}: use http/protobuf or grpc")
    try:
        module = __import__(module_name, fromlist=["OTLPSpanExporter"])
    except ImportError:
        package = module_name.replace(".trace_exporter", "").replace(".", "-")
        raise TracingUnavailable(
            f"OTLP over {protocol} needs {package}: pip install {package}"
        ) from None
    return module.OTLPSpanExporter()


def check_installed(environ: Mapping[str, str] = os.environ) -> None:
    """``TracingUnavailable`` when traces are asked for but the ``tracing`` extra (the SDK, the
    OTLP exporter, the gRPC instrumentation) is missing: at start-up, before any worker."""
    if not tracing_requested(environ):
        return
    try:
        import opentelemetry.instrumentation.grpc
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        raise TracingUnavailable(
            f"tracing is asked for by OTEL_* variables, but OpenTelemetry's SDK and "
            f"instrumentation are not installed: {INSTALL_HINT}"
        ) from None
    names = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() or "otlp"
    for name in (name.strip() for name in names.split(",") if name.strip()):
        _exporter(name, environ)


def grpc_interceptors(provider: Any, untraced: frozenset[str] = frozenset()) -> list[Any]:
    """OpenTelemetry's gRPC server interceptor for ``provider`` (none without one): a server
    span per call, continuing the caller's ``traceparent`` from the call's metadata; none for
    the ``untraced`` full method names (the server's calls to itself)."""
    if provider is None:
        return []
    from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters

    traced = filters.negate(filters.any_of(*map(filters.full_method_name, untraced)))
    return [aio_server_interceptor(tracer_provider=provider, filter_=traced if untraced else None)]


def fastapi_telemetry(provider: Any) -> dict[str, Any]:
    """FastAPI's native telemetry options: spans with ``provider``, else everything off, so that
    no request pays for asking whether an OpenTelemetry provider is configured. Metrics and
    logs stay with Prometheus and the service's logging either way."""
    if provider is None:
        return {"tracing": False, "metrics": False, "logs": False}
    return {"tracer_provider": provider, "tracing": True, "metrics": False, "logs": False}


def start_tracing(environ: Mapping[str, str] = os.environ) -> Any:
    """When the variables ask for traces: a configured SDK ``TracerProvider`` with a batch
    processor per exporter, which the core's spans use from now on and the transports'
    instrumentation is given; else None. ``TracingUnavailable`` (one line) when the SDK is
    not installed."""
    if not tracing_requested(environ):
        return None
    try:
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise TracingUnavailable(
            f"tracing is asked for by OTEL_* variables, but OpenTelemetry's SDK is not "
            f"installed: {INSTALL_HINT}"
        ) from None
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    names = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() or "otlp"
    for name in (name.strip() for name in names.split(",") if name.strip()):
        provider.add_span_processor(BatchSpanProcessor(_exporter(name, environ)))
    enable(provider)
    return provider


def enable(provider: Any) -> None:
    """Record the core's spans with ``provider`` (tests give one with an in-memory exporter)."""
    STATE.epoch_offset_ns = time.time_ns() - time.perf_counter_ns()
    STATE.tracer = provider.get_tracer(TRACER_NAME)


def disable() -> None:
    STATE.tracer = None


def enabled() -> bool:
    return STATE.tracer is not None


def span(name: str) -> AbstractContextManager[Any]:
    """A span named ``name`` around a transport's step while tracing is on; else nothing."""
    tracer = STATE.tracer
    if tracer is None:
        return _NOT_TRACED
    return tracer.start_as_current_span(name)


def record_inference(
    phases: Iterator[tuple[str, int, int]],
    started: int,
    finished: int,
    attributes: dict[str, Any],
    error: BaseException | None,
) -> None:
    """The ``inference`` span of one request, and one child span per phase, from the
    ``perf_counter_ns`` readings taken while it ran; under the current (server) span."""
    tracer = STATE.tracer
    if tracer is None:
        return
    from opentelemetry import trace

    offset = STATE.epoch_offset_ns
    parent = tracer.start_span("inference", start_time=started + offset, attributes=attributes)
    if error is not None:
        parent.record_exception(error)
        parent.set_status(trace.Status(trace.StatusCode.ERROR, type(error).__name__))
    context = trace.set_span_in_context(parent)
    for name, begin, end in phases:
        if end >= begin > 0:
            child = tracer.start_span(name, context=context, start_time=begin + offset)
            child.end(end_time=end + offset)
    parent.end(end_time=finished + offset)
