"""The batching access-log handler writes every record, and shutting logging down never hangs."""

import io
import logging
import threading
import time

from service.logs import BatchingStreamHandler

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
