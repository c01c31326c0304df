"""Triton's perf_analyzer, unchanged, against the served app over HTTP and gRPC: a fixed count
of ``-b 8`` requests at concurrency 2, where perf_analyzer can run (else skipped, with why)."""

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.grpc_servers import Served, grpc_settings, served
from tests.support.perf_analyzer import Unavailable, perf_analyzer

RUN_SECONDS = 60
REQUESTS = 200


@pytest.fixture(scope="module")
def command() -> list[str]:
    try:
        return perf_analyzer()
    except Unavailable as reason:
        pytest.skip(f"perf_analyzer cannot run here: {reason}")


@pytest.fixture(scope="module")
def server(shipped_model_path: Path) -> Iterator[Served]:
    with served(grpc_settings(shipped_model_path)) as running:
        yield running


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_perf_analyzer_runs_batches_of_eight(
    command: list[str], server: Served, transport: str
) -> None:
    url = server.url.removeprefix("http://") if transport == "http" else server.target
    arguments = ["-m", "mnist_mlp", "-i", transport, "-u", url, "-b", "8"]
    arguments += ["--concurrency-range", "2:2", "--request-count", str(REQUESTS)]
    finished = subprocess.run(
        [*command, *arguments], capture_output=True, text=True, timeout=RUN_SECONDS
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert f"Request count: {REQUESTS}" in finished.stdout, finished.stdout
    throughput = re.search(r"Concurrency: 2, throughput: ([0-9.]+) infer/sec", finished.stdout)
    assert throughput is not None and float(throughput[1]) > 0, finished.stdout
