"""The batching access-log handler writes every record, and shutting logging down never hangs."""

import io
import logging
import os
import threading
import time
from datetime import datetime

from service.logs import BatchingStreamHandler, SecondCachingFormatter, log_access
from service.rest.server import LOG_FORMAT

INTERVAL = 0.01


def record(message: str) -> logging.LogRecord:
    return logging.LogRecord("service.access", logging.INFO, __file__, 1, message, None, None)


def test_queued_records_are_written_in_order_by_close() -> None:
    stream = io.StringIO()
    handler = BatchingStreamHandler(stream, interval=60.0)
    for index in range(3):
        handler.handle(record(f"GET /{index} 200 0.10ms"))
    assert stream.getvalue() == ""
    handler.close()
    assert stream.getvalue().splitlines() == [f"GET /{index} 200 0.10ms" for index in range(3)]


def test_the_writer_thread_flushes_on_its_own() -> None:
    stream = io.StringIO()
    handler = BatchingStreamHandler(stream, interval=INTERVAL)
    handler.handle(record("GET / 200 0.10ms"))
    deadline = time.monotonic() + 10.0
    while not stream.getvalue() and time.monotonic() < deadline:
        time.sleep(INTERVAL)
    assert stream.getvalue() == "GET / 200 0.10ms\n"
    handler.close()


def test_close_under_the_handlers_lock_returns_as_logging_shutdown_needs() -> None:
    """``logging.shutdown`` holds the lock while it closes; the writer may be waiting for it."""
    stream = io.StringIO()
    handler = BatchingStreamHandler(stream, interval=INTERVAL)
    handler.handle(record("GET / 200 0.10ms"))

    def shut_down() -> None:
        with handler.lock:
            time.sleep(20 * INTERVAL)  # the writer wakes up and blocks on the lock meanwhile
            handler.flush()
            handler.close()

    closer = threading.Thread(target=shut_down, daemon=True)
    closer.start()
    closer.join(timeout=10.0)
    assert not closer.is_alive(), "close() deadlocked with the writer thread"
    assert stream.getvalue() == "GET / 200 0.10ms\n"


def batching_logger(name: str, stream: io.StringIO) -> tuple[logging.Logger, BatchingStreamHandler]:
    """A logger configured as ``python -m service`` configures the access log."""
    logger = logging.getLogger(name)
    handler = BatchingStreamHandler(stream, interval=60.0)
    handler.setFormatter(SecondCachingFormatter(LOG_FORMAT))
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    return logger, handler


def test_a_queued_access_line_keeps_the_time_of_the_request() -> None:
    stream = io.StringIO()
    logger, handler = batching_logger("tests.access.queued", stream)
    log_access(logger, "%s %s %d %.2fms", "POST", "/predict", 200, 1.234)
    logged_at = time.time()
    time.sleep(0.05)
    handler.close()
    line = stream.getvalue()
    assert line.endswith(" INFO tests.access.queued: POST /predict 200 1.23ms\n")
    stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    assert logged_at - 1.0 < stamp <= logged_at


def test_access_lines_go_through_logger_info_when_the_logger_is_not_ours(caplog) -> None:
    logger = logging.getLogger("tests.access.propagating")
    with caplog.at_level(logging.INFO, logger=logger.name):
        log_access(logger, "%s %d", "GET", 404)
    assert [entry.getMessage() for entry in caplog.records] == ["GET 404"]


def test_a_quiet_access_logger_queues_nothing() -> None:
    stream = io.StringIO()
    logger, handler = batching_logger("tests.access.quiet", stream)
    logger.setLevel(logging.WARNING)
    log_access(logger, "%s", "GET")
    handler.close()
    assert stream.getvalue() == ""


def test_cached_seconds_format_as_logging_formats_them() -> None:
    plain, cached = logging.Formatter(LOG_FORMAT), SecondCachingFormatter(LOG_FORMAT)
    start = time.time()
    for offset in (0.0, 0.0004, 0.5, 0.9996, 1.0, 1.25, 61.7, 3600.001):
        entry = record("GET / 200 0.10ms")
        entry.created = start + offset
        entry.msecs = (entry.created - int(entry.created)) * 1000.0 // 1
        assert cached.format(entry) == plain.format(entry)


def test_a_handlers_filter_drops_queued_lines_as_it_drops_records() -> None:
    stream = io.StringIO()
    logger, handler = batching_logger("tests.access.filtered", stream)
    handler.addFilter(lambda entry: "/health" not in entry.getMessage())
    log_access(logger, "%s %s", "GET", "/health")
    log_access(logger, "%s %s", "POST", "/predict")
    handler.handle(record("GET /health 200 0.10ms"))
    handler.close()
    assert stream.getvalue().endswith(" INFO tests.access.filtered: POST /predict\n")
    assert "/health" not in stream.getvalue()


def test_queued_lines_formatted_without_a_record_match_their_records() -> None:
    formatter = SecondCachingFormatter(LOG_FORMAT)
    plain = logging.Formatter(LOG_FORMAT)
    start = time.time()
    for offset in (0.0, 0.0004, 0.9996, 1.0, 61.7):
        entry = record("POST /predict 200 0.21ms")
        entry.created = start + offset
        entry.msecs = (entry.created - int(entry.created)) * 1000.0 // 1
        line = formatter.format_line(entry.name, entry.getMessage(), entry.created)
        assert line == plain.format(entry)


def test_a_format_that_needs_more_of_the_record_gets_the_record() -> None:
    """``%(process)d`` is not among a queued line's fields: its lines are made from records."""
    wide = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
    assert SecondCachingFormatter(wide).format_line("service.access", "GET /", time.time()) is None
    stream = io.StringIO()
    logger, handler = batching_logger("tests.access.wide", stream)
    handler.setFormatter(SecondCachingFormatter(wide))
    log_access(logger, "%s %s", "GET", "/metrics")
    handler.close()
    assert stream.getvalue().endswith(f" {os.getpid()} INFO tests.access.wide: GET /metrics\n")
