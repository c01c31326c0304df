"""Each benchmark starts and prints its table in its tiny ``--quick`` mode (about 15 s in all).

The benchmarks themselves never run in the test suite: their figures need minutes of a quiet
machine. This only proves that every script still runs against the current service.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
SCRIPTS = [
    "inference",
    "in_app",
    "http_predict",
    "levers",
    "bulk",
    "startup",
    "quantize",
    "capacity",
    "unary",
    "observability_cost",
    "call_memory",
]
NEED_WRK = {"http_predict", "levers", "capacity"}
NEED_H2LOAD = {"unary"}


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_starts_and_prints_a_table(script: str, mnist_dir: Path) -> None:
    if script in NEED_WRK and shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (apt-get install -y wrk)")
    if script in NEED_H2LOAD and shutil.which("h2load") is None:
        pytest.skip("h2load is not installed (apt-get install -y nghttp2-client)")
    completed = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{script}", "--quick"],
        cwd=PROJECT_ROOT,
        env=dict(os.environ, MNIST_DIR=str(mnist_dir)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "| --- |" in completed.stdout, completed.stdout[-2000:]
