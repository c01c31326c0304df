"""Model updates that drop no request: concurrent clients on a live server (loopback, bounded
in time) through ten loads, a failed load, SIGHUP, and SIGHUP with two workers.

Run with ``-s`` to see the figures (requests, failures, p99 while loads ran).
"""

import os
import signal
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.support.live_server import LiveService, live_service
from tests.support.models import build_tiny_model
from tests.support.repositories import write_version

CLIENTS = 6
LOADS = 10
TRAFFIC_SECONDS_AT_MOST = 60.0
IMAGE = np.random.default_rng(3).integers(0, 256, (1, 28, 28), dtype=np.uint8)
BODY = {
    "inputs": [
        {"name": "image", "shape": [1, 28, 28], "datatype": "UINT8", "data": IMAGE.ravel().tolist()}
    ]
}


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    write_version(tmp_path, "first", "1", 1)
    write_version(tmp_path, "second", "2", 2)
    return tmp_path


@dataclass
class Traffic:
    """Keep-alive clients posting V2 inferences (default and versioned) until stopped."""

    url: str
    results: list[tuple[float, float, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> "Traffic":
        self.threads = [threading.Thread(target=self._run, args=(n,)) for n in range(CLIENTS)]
        for thread in self.threads:
            thread.start()
        time.sleep(0.3)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _run(self, number: int) -> None:
        deadline = time.monotonic() + TRAFFIC_SECONDS_AT_MOST
        paths = ["/v2/models/mnist_mlp/infer", "/v2/models/mnist_mlp/versions/1/infer"]
        with httpx.Client(base_url=self.url, timeout=10.0) as client:
            while not self.stop.is_set() and time.monotonic() < deadline:
                started = time.monotonic()
                try:
                    response = client.post(paths[number % 2], json=BODY)
                    outcome = str(response.status_code)
                except httpx.HTTPError as error:
                    outcome = type(error).__name__
                self.results.append((started, time.monotonic() - started, outcome))

    def failures(self) -> list[str]:
        return [outcome for _, _, outcome in self.results if outcome != "200"]

    def during(self, windows: list[tuple[float, float]]) -> list[float]:
        """Latencies of the requests that overlapped one of the windows."""
        return [
            latency
            for started, latency, _ in self.results
            if any(started <= end and started + latency >= begin for begin, end in windows)
        ]


def p99_ms(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100)[98] * 1000 if len(latencies) >= 2 else 0.0


def report(name: str, traffic: Traffic, windows: list[tuple[float, float]]) -> None:
    during = traffic.during(windows)
    everything = [latency for _, latency, _ in traffic.results]
    print(
        f"\n{name}: {len(traffic.results)} requests, {len(traffic.failures())} failed; "
        f"{len(during)} during the loads, p99 {p99_ms(during):.1f} ms "
        f"(all requests: p99 {p99_ms(everything):.1f} ms)"
    )


def index(service: LiveService) -> dict[str, str]:
    rows = httpx.post(f"{service.url}/v2/repository/index", timeout=10).json()
    return {row["version"]: row["state"] for row in rows}


def timed_load(service: LiveService, windows: list) -> httpx.Response:
    begin = time.monotonic()
    response = httpx.post(f"{service.url}/v2/repository/models/mnist_mlp/load", timeout=30)
    windows.append((begin, time.monotonic()))
    return response


def test_ten_loads_and_a_failed_one_drop_no_request(repository: Path) -> None:
    windows: list[tuple[float, float]] = []
    with live_service(repository, model_control="true") as service, Traffic(service.url) as traffic:
        for seed in range(LOADS):
            write_version(repository, "first", "1", 10 + seed)
            assert timed_load(service, windows).status_code == 200
        (repository / "second.onnx").write_bytes(build_tiny_model(seed=99).SerializeToString())
        failed = timed_load(service, windows)
        assert failed.status_code == 400
        assert "model second.onnx: sha256 differs" in failed.json()["error"]
        time.sleep(0.3)
    report("ten loads and a failed one", traffic, windows)
    assert traffic.failures() == []
    assert len(traffic.during(windows)) >= LOADS


def test_sighup_loads_a_version_added_on_disk(repository: Path) -> None:
    with live_service(repository, model_control="true") as service, Traffic(service.url) as traffic:
        write_version(repository, "third", "3", 3)
        begin = time.monotonic()
        os.kill(service.process.pid, signal.SIGHUP)
        wait_for(lambda: index(service).get("3") == "READY")
        windows = [(begin, time.monotonic())]
    report("SIGHUP, one worker", traffic, windows)
    assert traffic.failures() == []


def test_two_workers_reload_in_place_on_sighup_and_on_a_load(repository: Path) -> None:
    windows: list[tuple[float, float]] = []
    with (
        live_service(repository, workers=2, model_control="true") as service,
        Traffic(service.url) as traffic,
    ):
        workers = service.worker_pids()
        write_version(repository, "third", "3", 3)
        begin = time.monotonic()
        os.kill(service.process.pid, signal.SIGHUP)
        wait_for(lambda: all_see_version(service, "3"))
        windows.append((begin, time.monotonic()))
        write_version(repository, "fourth", "4", 4)
        assert timed_load(service, windows).status_code == 200
        wait_for(lambda: all_see_version(service, "4"))
        (repository / "second.onnx").write_bytes(build_tiny_model(seed=99).SerializeToString())
        os.kill(service.process.pid, signal.SIGHUP)
        service.wait_for_log("sha256 differs")
        time.sleep(0.5)
        assert all_see_version(service, "2")
        assert service.worker_pids() == workers
    report("SIGHUP and a load, two workers", traffic, windows)
    assert traffic.failures() == []


def all_see_version(service: LiveService, version: str) -> bool:
    """Ten answers in a row, from whichever workers take them, all serve ``version``."""
    return all(index(service).get(version) == "READY" for _ in range(10))


def wait_for(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the condition never held")
        time.sleep(0.1)
