"""A live server's resident memory, read from /proc: now, and its peak over a stretch of time."""

import threading
from pathlib import Path

SAMPLE_SECONDS = 0.005


def resident_kib(pid: int) -> int:
    """VmRSS of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


class PeakSampler:
    """Samples a process's VmRSS every 5 ms in a thread while the ``with`` block runs; ``peak_kib``
    is the highest seen (VmHWM would include the start-up peak, and cannot be reset)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kib = resident_kib(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.peak_kib = max(self.peak_kib, resident_kib(self.pid))

    def __enter__(self) -> "PeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *exception: object) -> None:
        self._stop.set()
        self._thread.join()
