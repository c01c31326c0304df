"""The access log: a bounded QueueHandler whose listener writes every record in order, counts
what it had to drop, and is drained when logging shuts down."""

import io
import logging
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.logs import AccessLogHandler, SecondCachingFormatter, log_access
from service.rest.server import LOG_FORMAT
from service.settings import Settings


class BlockedStream(io.StringIO):
    """A stream whose writes wait for ``release``: a log stream that does not keep up."""

    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self.release = release

    def write(self, text: str) -> int:
        self.release.wait(10.0)
        return super().write(text)


def record(message: str) -> logging.LogRecord:
    return logging.LogRecord("service.access", logging.INFO, __file__, 1, message, None, None)


def access_logger(name: str, handler: AccessLogHandler) -> logging.Logger:
    """A logger configured as ``python -m service`` configures the access log."""
    logger = logging.getLogger(name)
    handler.setFormatter(SecondCachingFormatter(LOG_FORMAT))
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    return logger


def test_records_are_written_in_order_and_close_drains_the_queue() -> None:
    stream = io.StringIO()
    handler = AccessLogHandler(stream)
    for index in range(50):
        handler.handle(record(f"GET /{index} 200 0.10ms"))
    handler.close()
    assert stream.getvalue().splitlines() == [f"GET /{index} 200 0.10ms" for index in range(50)]


def test_an_access_line_is_formatted_by_the_listener() -> None:
    stream = io.StringIO()
    handler = AccessLogHandler(stream)
    logger = access_logger("tests.access.formatted", handler)
    log_access(logger, "%s %s %d %.2fms", "POST", "/predict", 200, 1.234)
    handler.close()
    assert stream.getvalue().endswith(" INFO tests.access.formatted: POST /predict 200 1.23ms\n")


def test_a_full_queue_drops_lines_counts_them_and_says_so() -> None:
    """While the stream blocks, the queue fills up: further lines are dropped and counted, and
    the count is written before the next line that gets through."""
    release = threading.Event()
    stream = BlockedStream(release)
    handler = AccessLogHandler(stream, capacity=4, interval=0.01)
    handler.handle(record("first"))
    time.sleep(0.1)  # the listener takes it and blocks writing it
    for index in range(10):
        handler.handle(record(f"line {index}"))
    assert handler.dropped == 6
    release.set()
    time.sleep(0.1)
    handler.handle(record("after"))
    handler.close()
    lines = stream.getvalue().splitlines()
    assert lines[:5] == ["first", "line 0", "line 1", "line 2", "line 3"]
    assert lines[5] == "6 access log lines dropped: the log stream did not keep up (6 in all)"
    assert lines[6] == "after"


def test_access_lines_reach_any_handler_the_logger_has(caplog) -> None:
    logger = logging.getLogger("tests.access.propagating")
    with caplog.at_level(logging.INFO, logger=logger.name):
        log_access(logger, "%s %d", "GET", 404)
    assert [entry.getMessage() for entry in caplog.records] == ["GET 404"]


def test_a_quiet_access_logger_queues_nothing() -> None:
    stream = io.StringIO()
    handler = AccessLogHandler(stream)
    logger = access_logger("tests.access.quiet", handler)
    logger.setLevel(logging.WARNING)
    log_access(logger, "%s", "GET")
    handler.close()
    assert stream.getvalue() == ""


def test_a_handlers_filter_drops_lines() -> None:
    stream = io.StringIO()
    handler = AccessLogHandler(stream)
    logger = access_logger("tests.access.filtered", handler)
    handler.addFilter(lambda entry: "/health" not in entry.getMessage())
    log_access(logger, "%s %s", "GET", "/health")
    log_access(logger, "%s %s", "POST", "/predict")
    handler.close()
    assert stream.getvalue().endswith(" INFO tests.access.filtered: POST /predict\n")
    assert "/health" not in stream.getvalue()


def test_cached_seconds_format_as_logging_formats_them() -> None:
    plain, cached = logging.Formatter(LOG_FORMAT), SecondCachingFormatter(LOG_FORMAT)
    start = time.time()
    for offset in (0.0, 0.0004, 0.5, 0.9996, 1.0, 1.25, 61.7, 3600.001):
        entry = record("GET / 200 0.10ms")
        entry.created = start + offset
        entry.msecs = (entry.created - int(entry.created)) * 1000.0 // 1
        assert cached.format(entry) == plain.format(entry)


def test_logging_shutdown_writes_what_is_queued() -> None:
    stream = io.StringIO()
    handler = AccessLogHandler(stream)
    handler.handle(record("GET / 200 0.10ms"))
    logging.shutdown([lambda: handler])
    assert stream.getvalue() == "GET / 200 0.10ms\n"


def test_dropped_lines_are_a_prometheus_counter(
    tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The served app counts every access line its handler drops in
    ``mnist_access_log_dropped_lines_total``, as the handler itself does."""
    release = threading.Event()
    handler = AccessLogHandler(BlockedStream(release), capacity=2, interval=0.01)
    logger = logging.getLogger("service.access")
    monkeypatch.setattr(logger, "handlers", [handler])
    monkeypatch.setattr(logger, "propagate", False)
    level = logger.level
    logger.setLevel(logging.INFO)  # setLevel, not the attribute: the logger caches its decisions
    try:
        with TestClient(create_app(Settings(model_path=tiny_model_path, grpc_port=0))) as client:
            for _ in range(8):
                assert client.get("/v2/health/live").status_code == 200
            dropped = handler.dropped  # the /metrics request's own line is logged after its answer
            exposition = client.get("/metrics").text
    finally:
        logger.setLevel(level)
        release.set()
        handler.close()
    assert dropped >= 4
    assert f"mnist_access_log_dropped_lines_total {float(dropped)}" in exposition
