"""Logging pieces: the access log written off the event loop, a formatter, JSON lines.

The access log is the standard library's ``QueueHandler``: the event loop puts each record on a
bounded queue, a thread formats and writes them in batches, so a slow or full stderr never
stalls a request. When the queue is full the line is dropped and counted (``count_drops``
hands each drop to a metric), and the count is written as a warning line once the stream keeps
up again.
"""

import contextlib
import json
import logging
import logging.handlers
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO
from urllib.parse import quote

MAX_QUEUED_RECORDS = 100_000
WRITE_INTERVAL_SECONDS = 0.2
WRITE_CHUNK = 64


class AccessLogHandler(logging.handlers.QueueHandler):
    """A ``QueueHandler`` on a bounded queue, whose records a thread of its own formats and
    writes to ``stream`` every ``interval`` seconds, all that is queued in a few writes; the
    formatter set on it formats them there.

    Not ``QueueListener``, which wakes its thread for every record: measured with
    ``python -m benchmarks.in_app --route infer`` (CPU per request, the access log on and off),
    that wake-up cost more than all the rest of the request. Access records are queued as
    they are (``prepare`` neither copies nor formats them on the event loop): their arguments
    never change afterwards.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        capacity: int = MAX_QUEUED_RECORDS,
        interval: float = WRITE_INTERVAL_SECONDS,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        # A SimpleQueue, bounded here: ``queue.Queue`` takes a lock and notifies a condition on
        # every put, for waiting readers this handler never has (its thread polls).
        super().__init__(queue.SimpleQueue())
        self.capacity = capacity
        self.dropped = 0
        self.on_drop: Callable[[], None] = _nothing
        self._reported = 0
        self.interval = interval
        self.writer = logging.StreamHandler(stream)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._write_batches, name="access-log", daemon=True)
        self._thread.start()

    def setFormatter(self, fmt: logging.Formatter | None) -> None:
        super().setFormatter(fmt)
        self.writer.setFormatter(fmt)

    def handle(self, record: logging.LogRecord) -> bool:
        """Filter and queue the record without the handler's lock: the queue has its own."""
        if not self.filter(record):
            return False
        self.enqueue(record)
        return True

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record

    def enqueue(self, record: logging.LogRecord) -> None:
        """Queue the record, or count it dropped when the queue is full."""
        try:
            if self.dropped != self._reported:
                self._put(self._drop_notice(self.dropped - self._reported))
                self._reported = self.dropped
            self._put(record)
        except queue.Full:
            self.dropped += 1
            self.on_drop()

    def _put(self, record: logging.LogRecord) -> None:
        """Queue ``record`` unless ``capacity`` records are waiting (threads logging at the same
        instant may each add one past it)."""
        if self.queue.qsize() >= self.capacity:
            raise queue.Full
        self.queue.put_nowait(record)

    def _drop_notice(self, lost: int) -> logging.LogRecord:
        return logging.LogRecord(
            self.name or "service.access",
            logging.WARNING,
            "",
            0,
            "%d access log lines dropped: the log stream did not keep up (%d in all)",
            (lost, self.dropped),
            None,
        )

    def _write_batches(self) -> None:
        while not self._stopped.wait(self.interval):
            self.write_queued()

    def write_queued(self) -> None:
        """Format and write what is queued, ``WRITE_CHUNK`` lines a write, letting go of the GIL
        between chunks so that requests do not wait for a whole batch's formatting."""
        writer = self.writer
        with writer.lock:
            while True:
                chunk = []
                with contextlib.suppress(queue.Empty):
                    while len(chunk) < WRITE_CHUNK:
                        chunk.append(self.queue.get_nowait())
                if not chunk:
                    break
                lines = []
                for record in chunk:
                    try:
                        lines.append(writer.format(record) + writer.terminator)
                    except Exception:
                        writer.handleError(record)
                try:
                    writer.stream.write("".join(lines))
                except Exception:
                    writer.handleError(chunk[-1])
                time.sleep(0)
            with contextlib.suppress(OSError, ValueError):
                writer.flush()

    def close(self) -> None:
        """Stop the thread and write what is queued (also from ``logging.shutdown``)."""
        self._stopped.set()
        self.write_queued()
        self.writer.close()
        super().close()


def _nothing() -> None:
    """What a drop does when nothing counts drops."""


def count_drops(logger: logging.Logger, count: Callable[[], None]) -> None:
    """From now on, ``count()`` once for every line an ``AccessLogHandler`` of ``logger`` drops
    (the Prometheus counter of dropped access-log lines)."""
    for handler in logger.handlers:
        if isinstance(handler, AccessLogHandler):
            handler.on_drop = count


def log_access(logger: logging.Logger, message: str, *arguments: object) -> None:
    """``logger.info(message, *arguments)`` without looking up the caller's file and line,
    which an access line never shows and which costs a stack walk per request. Text from the
    client (a path) is ``printable``: it cannot forge a line or drive a terminal."""
    if logger.isEnabledFor(logging.INFO):
        shown = tuple(
            [printable(value) if isinstance(value, str) else value for value in arguments]
        )
        logger.handle(logger.makeRecord(logger.name, logging.INFO, "", 0, message, shown, None))


def printable(text: str) -> str:
    """``text`` with every character that is not printable (line breaks, ANSI escapes, other
    control and separator characters) percent-encoded as its UTF-8 bytes: ``%0A``, ``%1B``."""
    if text.isprintable():
        return text
    return "".join(
        character if character.isprintable() else quote(character, safe="") for character in text
    )


class SecondCachingFormatter(logging.Formatter):
    """``logging.Formatter`` that formats each second's date and time once, not every line;
    the milliseconds are added to the cached second as ``Formatter`` itself does
    (``default_msec_format``)."""

    def __init__(self, *arguments, **options) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*arguments, **options)
        self._second, self._second_text = -1, ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None or self.default_msec_format is None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:
            self._second_text = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return self.default_msec_format % (self._second_text, record.msecs)


class JsonLinesFormatter(logging.Formatter):
    """One JSON object a line (``MNIST_LOG_FORMAT=json``): ``time`` (ISO 8601, UTC), ``level``,
    ``logger``, ``message``, and ``exception`` with its traceback when there is one. Twelve
    lines of the standard library's ``json`` rather than a dependency for them."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)
