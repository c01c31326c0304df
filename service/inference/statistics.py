"""Triton's statistics extension: per model version, what its requests and model calls cost.

Measured where the work happens, never estimated: a request's phases (decoding its input,
waiting for its model call, the call, building its outputs) are timed by the dataplane around
them, and each onnxruntime call (an *execution*, which with dynamic batching serves several
requests) by whoever makes it. The figures are Triton's (``extension_statistics.md``):

- ``inference_count``: images of successful requests; ``execution_count``: onnxruntime calls.
- ``inference_stats``: per request, ``success``/``fail`` (count and total ns), ``queue`` (from
  the end of its decoding to the start of its model call), ``compute_input`` (decoding),
  ``compute_infer`` (its model call), ``compute_output`` (its outputs from the call's rows).
- ``batch_stats``: per batch size, the calls of that size: ``compute_input`` (joining the
  requests' images), ``compute_infer`` (onnxruntime), ``compute_output`` (0 ns: each request's
  rows are views of the call's outputs, nothing is copied to hand them out).

The counters are this process's (each worker of several counts its own requests); each version
updates under its own lock, because large requests are served from worker threads.
"""

import threading
import time
from typing import Any

from service.inference import tracing
from service.inference.model_card import ModelCard

NANOSECONDS_PER_MILLISECOND = 1_000_000


class RequestTiming:
    """``perf_counter_ns`` readings of one request, filled in as it goes, recorded when its
    ``with`` block ends (a success, or a failure if it raised). The model call's start and
    end are set by whoever makes the call (with batching, once for every request sharing it);
    ``images`` by the request once it knows them, ``batch_size`` by the call. A reading not
    taken (a request refused before its call) stays 0. With tracing on, the same readings
    become the request's spans (``tracing.record_inference``)."""

    __slots__ = (
        "batch_size",
        "call_ended",
        "call_started",
        "decoded",
        "images",
        "started",
        "statistics",
    )

    def __init__(self, statistics: "VersionStatistics") -> None:
        self.statistics = statistics
        self.started = time.perf_counter_ns()
        self.decoded = self.call_started = self.call_ended = 0
        self.images = self.batch_size = 0

    def __enter__(self) -> "RequestTiming":
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, *_: object
    ) -> None:
        finished = time.perf_counter_ns()
        if kind is None:
            self.statistics.record_success(self, finished)
        else:
            self.statistics.record_failure(self, finished)
        if tracing.STATE.tracer is not None:
            self._trace(finished, error)

    def _trace(self, finished: int, error: BaseException | None) -> None:
        statistics = self.statistics
        phases = (
            ("decode", self.started, self.decoded),
            ("batch wait", self.decoded, self.call_started),
            ("model call", self.call_started, self.call_ended),
            ("outputs", self.call_ended, finished if error is None else 0),
        )
        attributes = {
            "model.name": statistics.name,
            "model.version": statistics.version,
            "inference.images": self.images,
            "inference.batch_size": self.batch_size,
        }
        tracing.record_inference(iter(phases), self.started, finished, attributes, error)


class VersionStatistics:
    """The counters of one model version (Triton's ``ModelStatistics``).

    Every answered request goes through all five phases, so one count serves them all, beside a
    sum of nanoseconds per phase; each batch size keeps [calls, joining ns, onnxruntime ns, rows
    ns]. Plain attributes updated under one lock: a request's whole record costs a few hundred
    nanoseconds (``python -m benchmarks.observability_cost``)."""

    def __init__(self, name: str, version: str) -> None:
        self.name = name
        self.version = version
        self.last_inference = 0
        self.inference_count = 0
        self.execution_count = 0
        self.answered = 0
        self.success_ns = self.input_ns = self.queue_ns = self.infer_ns = self.output_ns = 0
        self.failed = 0
        self.fail_ns = 0
        self.batches: dict[int, list[int]] = {}
        self._lock = threading.Lock()

    def record_execution(
        self, batch_size: int, input_ns: int, infer_ns: int, output_ns: int
    ) -> None:
        """One onnxruntime call of ``batch_size`` images and what each of its steps took."""
        with self._lock:
            self.execution_count += 1
            batch = self.batches.get(batch_size)
            if batch is None:
                batch = self.batches[batch_size] = [0, 0, 0, 0]
            batch[0] += 1
            batch[1] += input_ns
            batch[2] += infer_ns
            batch[3] += output_ns

    def measure(self) -> RequestTiming:
        """``with statistics.measure() as timing:`` around one request's work."""
        return RequestTiming(self)

    def record_success(self, timing: RequestTiming, finished: int) -> None:
        """A request answered; ``finished`` is when its outputs were built."""
        started, decoded = timing.started, timing.decoded
        call_started, call_ended = timing.call_started, timing.call_ended
        with self._lock:
            self.last_inference = finished
            self.inference_count += timing.images
            self.answered += 1
            self.success_ns += finished - started
            self.input_ns += decoded - started
            self.queue_ns += call_started - decoded
            self.infer_ns += call_ended - call_started
            self.output_ns += finished - call_ended

    def record_failure(self, timing: RequestTiming, finished: int) -> None:
        """A request for this version refused or failed after it was routed here."""
        with self._lock:
            self.failed += 1
            self.fail_ns += finished - timing.started

    def as_dict(self) -> dict[str, Any]:
        """Triton's JSON form (``$model_stat``), batch sizes in increasing order."""
        with self._lock:
            answered = self.answered
            # last_inference is kept as a perf_counter_ns reading (no wall-clock read per request)
            # and told as Triton does: milliseconds since the epoch.
            last = self.last_inference
            if last:
                last = (
                    last + time.time_ns() - time.perf_counter_ns()
                ) // NANOSECONDS_PER_MILLISECOND
            return {
                "name": self.name,
                "version": self.version,
                "last_inference": last,
                "inference_count": self.inference_count,
                "execution_count": self.execution_count,
                "inference_stats": {
                    "success": _duration(answered, self.success_ns),
                    "fail": _duration(self.failed, self.fail_ns),
                    "queue": _duration(answered, self.queue_ns),
                    "compute_input": _duration(answered, self.input_ns),
                    "compute_infer": _duration(answered, self.infer_ns),
                    "compute_output": _duration(answered, self.output_ns),
                    "cache_hit": _duration(0, 0),
                    "cache_miss": _duration(0, 0),
                },
                "batch_stats": [
                    {
                        "batch_size": size,
                        "compute_input": _duration(calls, input_ns),
                        "compute_infer": _duration(calls, infer_ns),
                        "compute_output": _duration(calls, output_ns),
                    }
                    for size, (calls, input_ns, infer_ns, output_ns) in sorted(self.batches.items())
                ],
                "memory_usage": [],
            }


def _duration(count: int, ns: int) -> dict[str, int]:
    """Triton's ``StatisticDuration``: how many times, and the total nanoseconds."""
    return {"count": count, "ns": ns}


class Statistics:
    """Every model version's counters, kept across unloads and reloads (as ``/metrics`` keeps
    its series) and created on a version's first request."""

    def __init__(self) -> None:
        self._versions: dict[tuple[str, str], VersionStatistics] = {}
        self._lock = threading.Lock()

    def of(self, card: ModelCard) -> VersionStatistics:
        """The counters of the version ``card`` describes."""
        key = (card.name, card.version)
        statistics = self._versions.get(key)
        if statistics is None:
            with self._lock:
                statistics = self._versions.setdefault(key, VersionStatistics(*key))
        return statistics

    def report(self, cards: list[ModelCard]) -> dict[str, Any]:
        """Triton's ``$stats_model_response`` for these versions (zeros for one never used)."""
        return {"model_stats": [self.of(card).as_dict() for card in cards]}
