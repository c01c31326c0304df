"""How the benchmarks report: timed calls, the run's conditions, Markdown tables and ratios.

The machine is small and shared, so absolute figures drift from run to run; every script
measures a reference in the same run and prints ratios, and prints the run's conditions.
"""

import json
import os
import platform
import shlex
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
    if os.environ.get(RECORD_DIR_VARIABLE):
        record_table(Path(os.environ[RECORD_DIR_VARIABLE]), title, headers, rows)


# Set to a folder (docs/benchmarks), a run also writes its tables there as one JSON result file
# with its date, machine and command; `python docs/performance.py` renders docs/performance.md.
RECORD_DIR_VARIABLE = "BENCHMARK_RECORD_DIR"
_RUN_STARTED = time.gmtime()


def record_table(
    folder: Path, title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]
) -> None:
    """Add one table to this run's result file, creating it with the run's conditions."""
    script = Path(sys.argv[0]).stem
    path = (
        folder / f"{time.strftime('%Y-%m-%d-%H%M', _RUN_STARTED)}-{script.replace('_', '-')}.json"
    )
    if path.exists():
        record = json.loads(path.read_text(encoding="utf-8"))
    else:
        load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
        record = {
            "date": time.strftime("%Y-%m-%dT%H:%MZ", _RUN_STARTED),
            "machine": f"{os.cpu_count()} cores, {platform.machine()}, load average {load}; "
            f"Python {platform.python_version()}, onnxruntime {onnxruntime.__version__}",
            "command": shlex.join(["python", "-m", f"benchmarks.{script}", *sys.argv[1:]]),
            "title": script.replace("_", " "),
            "notes": [],
            "tables": [],
        }
    cells = [[_cell(value) for value in row] for row in rows]
    record["tables"].append({"title": title, "headers": list(headers), "rows": cells})
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def ratio(ours: float, reference: float) -> str:
    """``ours / reference`` as ``1.23x``."""
    return f"{ours / reference:.2f}x" if reference else "n/a"
