"""Triton's perf_analyzer, unchanged, against the shipped repository served over HTTP and gRPC:
a fixed count of ``-b 8`` requests at concurrency 2, where perf_analyzer can run (else skipped,
with why).

Its "Server:" section reads the statistics extension under the version it measured, which it
reads as an integer (C++ ``std::stoll``), as Triton names versions: the shipped versions are
integers, so the section shows the service's own figures, for the default version and for one
named with ``-x``."""

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.inference.model_card import read_model_card
from tests.support.grpc_servers import Served, grpc_settings, served
from tests.support.perf_analyzer import Unavailable, perf_analyzer

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
    # The shipped repository, every version, as ``python -m service`` serves it.
    with served(grpc_settings(shipped_model_path.parent)) as running:
        yield running


@pytest.fixture(scope="module")
def versions(shipped_model_path: Path) -> dict[str, str]:
    """The shipped versions: ``default`` (the fp32 model's) and ``int8``."""
    return {
        kind: read_model_card(shipped_model_path.with_name(name)).version
        for kind, name in (("default", "mnist_mlp.json"), ("int8", "mnist_mlp.int8.json"))
    }


def run(command: list[str], server: Served, transport: str, *options: str) -> str:
    """perf_analyzer's report of ``REQUESTS`` requests of ``BATCH`` images at concurrency 2."""
    url = server.url.removeprefix("http://") if transport == "http" else server.target
    arguments = ["-m", "mnist_mlp", "-i", transport, "-u", url, "-b", str(BATCH), *options]
    arguments += ["--concurrency-range", "2:2", "--request-count", str(REQUESTS)]
    finished = subprocess.run(
        [*command, *arguments], capture_output=True, text=True, timeout=RUN_SECONDS
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert f"Request count: {REQUESTS}" in finished.stdout, finished.stdout
    return finished.stdout


def successes(server: Served, version: str) -> int:
    """The statistics extension's count of successful requests to one version."""
    answer = httpx.get(f"{server.url}/v2/models/mnist_mlp/versions/{version}/stats").json()
    (statistics,) = answer["model_stats"]
    return int(statistics["inference_stats"]["success"]["count"])


def server_figure(report: str, label: str) -> int:
    """One count of the report's "Server:" section, such as ``Inference count``."""
    section = report.partition("  Server:")[2]
    found = re.search(rf"^\s+{label}: (\d+)$", section, re.MULTILINE)
    assert found is not None, report
    return int(found[1])


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("measured", ["default", "int8"])
def test_perf_analyzer_shows_the_server_statistics_of_the_shipped_versions(
    command: list[str], server: Served, versions: dict[str, str], transport: str, measured: str
) -> None:
    """``-m mnist_mlp`` alone measures the default version; ``-x 2`` the int8 one."""
    options = [] if measured == "default" else ["-x", versions[measured]]
    other = versions["int8" if measured == "default" else "default"]
    before = successes(server, versions[measured]), successes(server, other)
    report = run(command, server, transport, *options)
    throughput = re.search(r"Concurrency: 2, throughput: ([0-9.]+) infer/sec", report)
    assert throughput is not None and float(throughput[1]) > 0, report
    requests = server_figure(report, "Successful request count")
    assert 0 < requests <= successes(server, versions[measured]) - before[0]
    assert successes(server, other) == before[1]
    assert server_figure(report, "Inference count") == BATCH * requests
    assert 1 <= server_figure(report, "Execution count") <= requests
    latency = re.search(r"Avg request latency: (\d+) usec \(overhead", report)
    assert latency is not None and int(latency[1]) > 0, report
