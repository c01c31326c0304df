"""What Triton's statistics and OpenTelemetry tracing cost a request, in process (no HTTP):
the statistics' own work per request beside one V2 inference of one image through the dataplane,
and that inference with tracing off and on (the SDK with a batch processor and an exporter that
drops the spans, so that only the service's side is counted).

    python -m benchmarks.observability_cost [--requests N] [--repeat R]

Tracing on needs the ``tracing`` extra; without it that row says so.
"""

import asyncio
import statistics as stats
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from benchmarks.report import conditions
from benchmarks.run import parser_for, workspace
from service.inference import tracing
from service.inference.dataplane import DataPlane
from service.inference.repository import open_repository
from service.inference.statistics import VersionStatistics
from service.inference.tracing import span
from service.inference.v2 import InferRequest
from service.settings import Settings

ONE_IMAGE = orjson.dumps(
    {"inputs": [{"name": "image", "shape": [1, 28, 28], "datatype": "UINT8", "data": [0] * 784}]}
)


def statistics_work(requests: int) -> float:
    """Nanoseconds per request of what the statistics add: a timing, two clock readings around
    the model call, the call's record and the request's."""
    version = VersionStatistics("mnist_mlp", "1")
    started = time.perf_counter_ns()
    for _ in range(requests):
        with version.measure() as timing:
            timing.images, timing.decoded = 1, time.perf_counter_ns()
            call_started = time.perf_counter_ns()
            call_ended = time.perf_counter_ns()
            timing.call_started, timing.call_ended, timing.batch_size = call_started, call_ended, 1
            version.record_execution(1, 0, call_ended - call_started, 0)
    return (time.perf_counter_ns() - started) / requests


def inference(dataplane: DataPlane, requests: int) -> float:
    """Nanoseconds per V2 inference of one image, read and answered as the REST route does."""

    async def run() -> float:
        started = time.perf_counter_ns()
        for _ in range(requests):
            with span("request"):
                classifier = dataplane.model("mnist_mlp")
                with span("read request"):
                    received = InferRequest.from_rest(ONE_IMAGE, None)
                result = await dataplane.infer(classifier, received)
                with span("encode response"):
                    if not result.outputs:
                        raise RuntimeError("no outputs")
        return (time.perf_counter_ns() - started) / requests

    return asyncio.run(run())


def best_of(repeat: int, measure: Callable[[], float]) -> tuple[float, float]:
    """Median and minimum over ``repeat`` runs, in microseconds."""
    runs = [measure() / 1000 for _ in range(repeat)]
    return stats.median(runs), min(runs)


def tracing_provider() -> object | None:
    """An SDK provider whose exporter drops every span, or None without the tracing extra."""
    try:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )
    except ImportError:
        return None

    class Dropping(SpanExporter):
        def export(self, spans: object) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Dropping()))
    return provider


def main(argv: list[str] | None = None) -> int:
    parser = parser_for(__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000, help="requests per run")
    parser.add_argument("--repeat", type=int, default=5, help="runs per variant")
    arguments = parser.parse_args(argv)
    requests = 200 if arguments.quick else arguments.requests
    with workspace(arguments.model) as (_, model, _stack):
        settings = Settings(model_path=Path(model), access_log=False, dynamic_batching=True)
        dataplane = DataPlane(settings)
        dataplane.serve_repository(open_repository(settings))
        print(
            f"Conditions: {conditions(model)}; {requests} requests a run, {arguments.repeat} runs"
        )
        own_work = best_of(arguments.repeat, lambda: statistics_work(requests))
        rows = [("statistics' own work", own_work)]
        inference(dataplane, requests)  # warm-up
        off = best_of(arguments.repeat, lambda: inference(dataplane, requests))
        rows.append(("V2 inference, tracing off", off))
        provider = tracing_provider()
        if provider is None:
            rows.append(("V2 inference, tracing on: needs the tracing extra", (0.0, 0.0)))
        else:
            tracing.enable(provider)
            try:
                on = best_of(arguments.repeat, lambda: inference(dataplane, requests))
                rows.append(("V2 inference, tracing on", on))
            finally:
                tracing.disable()
                provider.shutdown()
        print("| what | µs a request (median) | µs (best) | / tracing off (median) |")
        print("| --- | --- | --- | --- |")
        for name, (median, best) in rows:
            print(f"| {name} | {median:.2f} | {best:.2f} | {median / off[0]:.3f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
