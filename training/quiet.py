"""Keep TensorFlow's C++ log lines off the terminal, and everything else on it.

TensorFlow 2.21 logs through absl before Python can configure anything: ``TF_CPP_MIN_LOG_LEVEL``
no longer hides the oneDNN, CUDA and CPU-feature lines at import, nor the ``cuInit`` and
``NodeDef`` lines later. So standard error (file descriptor 2, where C++ writes) is routed
through a pipe for the whole run, and only lines in absl's format are dropped.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

NATIVE_LOG_LINE = re.compile(
    rb"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w.]+:\d+\]"
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|To enable the following instructions: )"
)
JOIN_SECONDS = 5.0


def is_native_log_line(line: bytes) -> bool:
    """A line TensorFlow's C++ runtime wrote (absl's ``I0000 00:00:... file.cc:12]`` format)."""
    return NATIVE_LOG_LINE.match(line) is not None


@contextmanager
def without_native_logs() -> Iterator[None]:
    """Inside: fd 2 goes through a filter that drops TensorFlow's C++ log lines."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    terminal = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    copier = threading.Thread(target=_copy_lines, args=(read_end, terminal), daemon=True)
    copier.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(terminal, 2)
        copier.join(JOIN_SECONDS)
        os.close(terminal)


def _copy_lines(read_end: int, terminal: int) -> None:
    """Copy every line from the pipe to the terminal's stderr, except C++ log lines."""
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        pending = b""
        while chunk := pipe.read(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            kept = [line + b"\n" for line in lines if not is_native_log_line(line)]
            if kept:
                os.write(terminal, b"".join(kept))
        if pending and not is_native_log_line(pending):
            os.write(terminal, pending)
