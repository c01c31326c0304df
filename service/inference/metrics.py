"""Prometheus instruments, one registry per app so that several apps (tests) never collide.

With several uvicorn workers, ``python -m service`` sets ``PROMETHEUS_MULTIPROC_DIR`` before the
workers start: each then writes its values to files there, and ``/metrics`` sums all workers.
"""

import collections
import os
from collections.abc import Sequence
from typing import Any, Generic, TypeVar, overload

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

disable_created_metrics()

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096, 16384)
MULTIPROCESS_DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


MetricT = TypeVar("MetricT", Counter, Gauge, Histogram)


class Instrument(Generic[MetricT]):
    """A Prometheus instrument declared once on ``Metrics``: each ``Metrics`` makes its own in
    its registry (``make``), which its attribute of the same name then is."""

    def __init__(
        self,
        kind: type[MetricT],
        name: str,
        documentation: str,
        labels: Sequence[str] = (),
        **options: Any,
    ) -> None:
        self.kind = kind
        self.name = name
        self.documentation = documentation
        self.labels = tuple(labels)
        self.options = options
        self.attribute = ""

    def __set_name__(self, owner: type, attribute: str) -> None:
        self.attribute = attribute

    @overload
    def __get__(self, metrics: None, owner: type) -> "Instrument[MetricT]": ...
    @overload
    def __get__(self, metrics: "Metrics", owner: type) -> MetricT: ...
    def __get__(self, metrics: "Metrics | None", owner: type) -> "Instrument[MetricT] | MetricT":
        """The declaration on the class; an instance's own instrument, which ``Metrics`` puts in
        its ``__dict__`` when it is made, is found there first."""
        if metrics is None:
            return self
        raise AttributeError(f"{self.attribute}: made by Metrics.__init__ only")

    def make(self, registry: CollectorRegistry) -> MetricT:
        return self.kind(
            self.name, self.documentation, self.labels, registry=registry, **self.options
        )


class Metrics:
    """HTTP requests by route and status, gRPC calls by method and code, latency, inference
    batch sizes, digits, rejections."""

    requests = Instrument(
        Counter,
        "mnist_http_requests",
        "HTTP requests served, by route template, method and status.",
        ["route", "method", "status"],
    )
    request_latency = Instrument(
        Histogram,
        "mnist_http_request_duration_seconds",
        "Time from the request's first byte to its response's last, by route template.",
        ["route"],
        buckets=LATENCY_BUCKETS,
    )
    grpc_requests = Instrument(
        Counter,
        "mnist_grpc_requests",
        "gRPC calls served, by full method name and status code.",
        ["method", "code"],
    )
    grpc_request_latency = Instrument(
        Histogram,
        "mnist_grpc_request_duration_seconds",
        "Time from a gRPC call's start to its answer, by full method name.",
        ["method"],
        buckets=LATENCY_BUCKETS,
    )
    inflight_bytes = Instrument(
        Gauge,
        "mnist_inflight_bytes",
        "Bytes of request work held in the in-flight budget now (MNIST_MAX_INFLIGHT_BYTES), "
        "summed over workers.",
        multiprocess_mode="livesum",
    )
    batch_sizes = Instrument(
        Histogram,
        "mnist_inference_batch_size",
        "Images per onnxruntime call, by model and version.",
        ["model", "version"],
        buckets=BATCH_BUCKETS,
    )
    predictions = Instrument(
        Counter,
        "mnist_predictions",
        "Predicted digits, by model and version.",
        ["model", "version", "digit"],
    )
    model_loads = Instrument(
        Counter,
        "mnist_model_loads",
        "Model loads from the repository, by model and result (loaded or failed).",
        ["model", "result"],
    )
    rejected_inputs = Instrument(
        Counter, "mnist_rejected_inputs", "Refused requests, by reason.", ["reason"]
    )
    access_log_dropped = Instrument(
        Counter,
        "mnist_access_log_dropped_lines",
        "Access-log lines dropped because the log stream did not keep up.",
    )

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._request_series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._digit_series: dict[tuple[str, str, str], Counter] = {}
        self._batch_series: dict[tuple[str, str], Histogram] = {}
        for declared in vars(Metrics).values():
            if isinstance(declared, Instrument):
                self.__dict__[declared.attribute] = declared.make(self.registry)

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count and time one HTTP request; its labelled series are looked up once, then kept.

        ``labels()`` validates and locks on every call; the children it returns
        are the same objects every time, so a dict of them costs a lookup instead.
        """
        key = (route, method, status)
        series = self._request_series.get(key)
        if series is None:
            series = (
                self.requests.labels(route, method, str(status)),
                self.request_latency.labels(route),
            )
            self._request_series[key] = series
        series[0].inc()
        series[1].observe(seconds)

    def observe_grpc_call(self, method: str, code: str, seconds: float) -> None:
        self.grpc_requests.labels(method, code).inc()
        self.grpc_request_latency.labels(method).observe(seconds)

    def observe_model_call(self, model: str, version: str, images: int) -> None:
        """Record the images of one onnxruntime call."""
        key = (model, version)
        series = self._batch_series.get(key)
        if series is None:
            series = self._batch_series[key] = self.batch_sizes.labels(model, version)
        series.observe(images)

    def observe_inference(self, model: str, version: str, digits: list[str]) -> None:
        """Count the digit each image of a request got, one ``inc`` per digit."""
        counts = {digits[0]: 1} if len(digits) == 1 else collections.Counter(digits)
        for digit, count in counts.items():
            key = (model, version, digit)
            series = self._digit_series.get(key)
            if series is None:
                series = self._digit_series[key] = self.predictions.labels(model, version, digit)
            series.inc(count)

    def exposition(self) -> bytes:
        """The text format of this process's metrics, or of every worker's in multiprocess mode."""
        if MULTIPROCESS_DIRECTORY_VARIABLE not in os.environ:
            return generate_latest(self.registry)
        every_worker = CollectorRegistry()
        multiprocess.MultiProcessCollector(every_worker)
        return generate_latest(every_worker)
