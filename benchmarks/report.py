"""How the benchmarks report: timed calls, the run's conditions, Markdown tables and ratios.

The machine is small and shared, so absolute figures drift from run to run; every script
measures a reference in the same run and prints ratios, and prints the run's conditions.
"""

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import onnxruntime


@dataclass(frozen=True)
class Timing:
    """Wall-clock and process CPU seconds of one call; CPU above wall means helper threads.

    CPU time is what a busy machine distorts least: waiting for a core does not count.
    """

    wall: float
    cpu: float


def time_call(function: Callable[[], object], budget: float, rounds: int = 5) -> Timing:
    """The median round of ``rounds``, each calling ``function`` for ``budget / rounds`` s."""
    function()
    per_round = budget / rounds
    timings = []
    for _ in range(rounds):
        calls, started, cpu_started = 0, time.perf_counter(), time.process_time()
        while True:
            function()
            calls += 1
            elapsed = time.perf_counter() - started
            if elapsed >= per_round:
                break
        timings.append(Timing(elapsed / calls, (time.process_time() - cpu_started) / calls))
    return sorted(timings, key=lambda timing: timing.wall)[(rounds - 1) // 2]


def conditions(model: Path) -> str:
    """One line on what the figures were measured under."""
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"{time.strftime('%Y-%m-%d %H:%M')}; {os.cpu_count()} cores, load average {load}; "
        f"Python {sys.version.split()[0]}, onnxruntime {onnxruntime.__version__}; model {model}"
    )


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A Markdown table, so that a run pastes straight into the README."""
    print(f"\n### {title}\n")
    print("| " + " | ".join(headers) + " |")
    print("| " + " | ".join("---" for _ in headers) + " |")
    for row in rows:
        print("| " + " | ".join(_cell(value) for value in row) + " |")
    sys.stdout.flush()


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def ratio(ours: float, reference: float) -> str:
    """``ours / reference`` as ``1.23x``."""
    return f"{ours / reference:.2f}x" if reference else "n/a"
