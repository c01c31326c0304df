"""Triton's perf_analyzer, unchanged, against the served app over HTTP and gRPC: a fixed count
of ``-b 8`` requests at concurrency 2, where perf_analyzer can run (else skipped, with why).

Its "Server:" section reads the statistics extension, but only for a version named by an
integer, as Triton's are (docs/operations.md says why): a repository with such a version shows
the service's own figures in it."""

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.grpc_servers import Served, grpc_settings, served
from tests.support.perf_analyzer import Unavailable, perf_analyzer
from tests.support.repositories import write_version

RUN_SECONDS = 60
REQUESTS = 200
BATCH = 8
TRANSPORTS = ["http", "grpc"]


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


@pytest.fixture(scope="module")
def numbered_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A repository whose one version is ``1``."""
    folder = tmp_path_factory.mktemp("numbered")
    write_version(folder, "mnist_mlp", "1", seed=1)
    with served(grpc_settings(folder)) as running:
        yield running


def run(command: list[str], server: Served, transport: str) -> str:
    """perf_analyzer's report of ``REQUESTS`` requests of ``BATCH`` images at concurrency 2."""
    url = server.url.removeprefix("http://") if transport == "http" else server.target
    arguments = ["-m", "mnist_mlp", "-i", transport, "-u", url, "-b", str(BATCH)]
    arguments += ["--concurrency-range", "2:2", "--request-count", str(REQUESTS)]
    finished = subprocess.run(
        [*command, *arguments], capture_output=True, text=True, timeout=RUN_SECONDS
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert f"Request count: {REQUESTS}" in finished.stdout, finished.stdout
    return finished.stdout


def server_figure(report: str, label: str) -> int:
    """One count of the report's "Server:" section, such as ``Inference count``."""
    section = report.partition("  Server:")[2]
    found = re.search(rf"^\s+{label}: (\d+)$", section, re.MULTILINE)
    assert found is not None, report
    return int(found[1])


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_perf_analyzer_runs_batches_of_eight(
    command: list[str], server: Served, transport: str
) -> None:
    report = run(command, server, transport)
    throughput = re.search(r"Concurrency: 2, throughput: ([0-9.]+) infer/sec", report)
    assert throughput is not None and float(throughput[1]) > 0, report


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_perf_analyzer_shows_the_server_statistics_of_a_numbered_version(
    command: list[str], numbered_server: Served, transport: str
) -> None:
    report = run(command, numbered_server, transport)
    requests = server_figure(report, "Successful request count")
    assert requests > 0
    assert server_figure(report, "Inference count") == BATCH * requests
    assert 1 <= server_figure(report, "Execution count") <= requests
    latency = re.search(r"Avg request latency: (\d+) usec \(overhead", report)
    assert latency is not None and int(latency[1]) > 0, report
