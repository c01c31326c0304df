"""A one-line progress bar on stderr while a folder is classified.

Hand-written rather than a dependency (tqdm would be the base install's only package for the
terminal alone): one line rewritten in place, at most ten times a second.
"""

import time
from typing import TextIO

BAR_WIDTH = 24
REDRAW_SECONDS = 0.1


class ProgressBar:
    """``classifying  37/120 [#######.................]  31%  412 images/s  ETA 0:01``."""

    def __init__(self, total: int, stream: TextIO, enabled: bool = True) -> None:
        if total < 0:
            raise ValueError(f"a progress bar counts up to a total of at least 0, not {total}")
        self.total = total
        self.stream = stream
        self.enabled = enabled
        self.done = 0
        self.started = time.monotonic()
        self.drawn_at = float("-inf")
        self.width = 0

    def advance(self) -> None:
        """One more file done; redrawn when the last drawing is old enough, and at the end."""
        self.done += 1
        now = time.monotonic()
        if now - self.drawn_at >= REDRAW_SECONDS or self.done == self.total:
            self._draw(now)

    def note(self, line: str) -> None:
        """Print a line of its own (an error) above the bar, which then goes on below it."""
        self._clear()
        print(line, file=self.stream, flush=True)
        if self.done:
            self._draw(time.monotonic())

    def close(self) -> None:
        """Leave the final state on its own line."""
        if self.enabled and self.width:
            self.stream.write("\n")
            self.stream.flush()
            self.width = 0

    def line(self, now: float) -> str:
        """The bar's text at ``now``."""
        fraction = self.done / self.total if self.total else 1.0
        filled = round(BAR_WIDTH * fraction)
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        remaining = (self.total - self.done) / rate if rate else 0.0
        digits = len(str(self.total))
        return (
            f"classifying {self.done:>{digits}}/{self.total} "
            f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {fraction:4.0%}  "
            f"{rate:,.0f} images/s  ETA {_minutes(remaining)}"
        )

    def _draw(self, now: float) -> None:
        if not self.enabled:
            return
        text = self.line(now)
        self.stream.write("\r" + text.ljust(self.width))
        self.stream.flush()
        self.width = len(text)
        self.drawn_at = now

    def _clear(self) -> None:
        if self.enabled and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.width = 0


def _minutes(seconds: float) -> str:
    minutes, whole_seconds = divmod(round(seconds), 60)
    return f"{minutes}:{whole_seconds:02d}"
