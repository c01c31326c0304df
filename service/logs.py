"""Logging pieces: a handler that writes access lines off the event loop, and JSON lines."""

import collections
import contextlib
import json
import logging
import re
import threading
import time
from datetime import UTC, datetime
from typing import TextIO

MAX_QUEUED_RECORDS = 100_000
# The record attributes a queued line can be formatted with, without building its record.
LINE_FIELDS = {"asctime", "levelname", "name", "message"}
RECORD_FIELD = re.compile(r"%\((\w+)\)")
WRITE_CHUNK = 64
# A line queued by ``log_access`` before it is a record: logger name, message, arguments, time.
PendingLine = tuple[str, str, tuple, float]


class BatchingStreamHandler(logging.StreamHandler):
    """A stream handler whose records are formatted and written by a thread, a batch at a time.

    Formatting and writing one access line on the event loop cost ~45 µs of CPU in a live
    request, mostly cold caches; in a batch every ``interval`` seconds it costs about half, in one
    write, and a slow or full stream can no longer stall the event loop, which only appends the
    record to a deque. Meant for records whose arguments do not change afterwards (access lines).
    Should the stream block for long, the oldest of ``MAX_QUEUED_RECORDS`` lines are dropped
    rather than memory growing without end.
    """

    def __init__(self, stream: TextIO | None = None, interval: float = 0.2) -> None:
        super().__init__(stream)
        self.interval = interval
        self._records: collections.deque[logging.LogRecord | PendingLine] = collections.deque(
            maxlen=MAX_QUEUED_RECORDS
        )
        self._stopped = threading.Event()
        self._writer = threading.Thread(target=self._write_batches, name="log-batches", daemon=True)
        self._writer.start()

    def handle(self, record: logging.LogRecord) -> bool:
        """Queue the record without taking the handler's lock (``deque.append`` is atomic)."""
        if not self.filter(record):
            return False
        self._records.append(record)
        return True

    def enqueue(self, line: PendingLine) -> None:
        """Queue a line that becomes a ``LogRecord`` (with the time given) only in the writer."""
        self._records.append(line)

    def flush(self) -> None:
        """Format and write the queued records, ``WRITE_CHUNK`` lines a write.

        Between chunks the thread lets go of the GIL: formatting a whole 0.2 s batch (over a
        thousand lines at full load) in one go held it for milliseconds, which requests waited
        out (p99 2.0 ms against 0.28 ms with the access log off, at one connection).
        """
        with self.lock:
            while self._records:
                chunk = [
                    self._records.popleft() for _ in range(min(WRITE_CHUNK, len(self._records)))
                ]
                self._write(chunk)
                time.sleep(0)
            super().flush()

    def _write(self, chunk: list[logging.LogRecord | PendingLine]) -> None:
        text = "".join(map(self._line, chunk))
        if text:
            try:
                self.stream.write(text)
            except Exception:
                self.handleError(_as_record(chunk[-1]) if type(chunk[-1]) is tuple else chunk[-1])

    def _line(self, entry: logging.LogRecord | PendingLine) -> str:
        """A record's line (its filters ran in ``handle``); a queued line's, straight from the
        tuple when no filter needs its record and the formatter can (``format_line``)."""
        try:
            if type(entry) is tuple:
                direct = getattr(self.formatter, "format_line", None)
                if direct is not None and not self.filters:
                    name, message, arguments, created = entry
                    line = direct(name, message % arguments if arguments else message, created)
                    if line is not None:
                        return line + self.terminator
                entry = _as_record(entry)
                if not self.filter(entry):
                    return ""
            return self.format(entry) + self.terminator
        except Exception:
            self.handleError(entry if isinstance(entry, logging.LogRecord) else _as_record(entry))
            return ""

    def close(self) -> None:
        """Stop the writer thread and write what is queued, without waiting for the thread.

        ``logging.shutdown`` calls this holding the handler's lock, which the writer may be
        waiting for in ``flush``: joining it here would deadlock. Once the lock is released, the
        writer finds nothing left to write and sees that it is stopped.
        """
        self._stopped.set()
        self.flush()
        super().close()

    def _write_batches(self) -> None:
        """Flush every ``interval``; a stream that fails to flush is retried, as logging does."""
        while not self._stopped.wait(self.interval):
            with contextlib.suppress(OSError, ValueError):
                self.flush()


def _as_record(line: PendingLine) -> logging.LogRecord:
    """The INFO record of a queued line, dated when the line was queued, not when it is written."""
    name, message, arguments, created = line
    record = logging.LogRecord(name, logging.INFO, "", 0, message, arguments, None)
    record.relativeCreated -= (record.created - created) * 1000.0
    record.created, record.msecs = created, (created - int(created)) * 1000.0 // 1
    return record


def log_access(logger: logging.Logger, message: str, *arguments: object) -> None:
    """``logger.info(message, *arguments)``, with the record made off the event loop.

    When a ``BatchingStreamHandler`` is the logger's one handler (as ``python -m service``
    configures the access log), the line is queued as a tuple: building the ``LogRecord`` took
    ~4 µs of the event loop's time a request, and its writer thread builds it instead, with the
    request's time. Any other set-up (tests' capture, a user's config) gets ``logger.info``.
    """
    handlers = logger.handlers
    batching = len(handlers) == 1 and type(handlers[0]) is BatchingStreamHandler
    if not batching or logger.filters or logger.propagate:
        logger.info(message, *arguments)
    elif logger.isEnabledFor(logging.INFO) and handlers[0].level <= logging.INFO:
        handlers[0].enqueue((logger.name, message, arguments, time.time()))


class SecondCachingFormatter(logging.Formatter):
    """``logging.Formatter`` that formats each second's date and time once, not every line.

    ``time.strftime`` was a quarter of an access line's formatting; the milliseconds are added
    to the cached second as ``Formatter`` itself does (``default_msec_format``). A queued access
    line whose format needs only the time, level, logger name and message is formatted without
    a ``LogRecord`` (``format_line``): building one was ~3 of the ~5 µs a line cost the writer.
    """

    def __init__(self, *arguments, **options) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*arguments, **options)
        self._second, self._second_text = -1, ""
        fields = set(RECORD_FIELD.findall(self._fmt or ""))
        self._direct = type(self._style) is logging.PercentStyle and fields <= LINE_FIELDS

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None or self.default_msec_format is None:
            return super().formatTime(record, datefmt)
        return self._time_text(record.created, record.msecs)

    def _time_text(self, created: float, msecs: float) -> str:
        second = int(created)
        if second != self._second:
            self._second_text = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return self.default_msec_format % (self._second_text, msecs)

    def format_line(self, name: str, message: str, created: float) -> str | None:
        """What ``format`` gives for an INFO record of ``name`` and ``message`` made at
        ``created`` (or None when the format needs more of a record than that)."""
        if not self._direct or self.datefmt is not None or self.default_msec_format is None:
            return None
        asctime = self._time_text(created, (created - int(created)) * 1000.0 // 1)
        fields = {"asctime": asctime, "levelname": "INFO", "name": name, "message": message}
        return self._style._fmt % fields


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
