"""Several workers serve the same models, on a live ``python -m service`` with two workers: a
load answers only once every worker serves its result; a worker that replaces one that died,
finding files changed on disk since, has every worker reload so that all serve the same; and
readiness is false, naming the workers, while what they serve differs."""

import json
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from service.inference.worker_states import STATES_VARIABLE
from tests.support.live_server import LiveService, live_service
from tests.support.repositories import write_version

ASKS = 20  # answers in a row, from whichever workers take them
SETTLE_SECONDS = 30.0


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    write_version(tmp_path, "first", "1", 1)
    return tmp_path


def versions_ready(service: LiveService) -> set[str]:
    rows = httpx.post(f"{service.url}/v2/repository/index", timeout=10).json()
    return {row["version"] for row in rows if row["state"] == "READY"}


def every_answer_serves(service: LiveService, version: str) -> bool:
    """``ASKS`` answers in a row, spread over the workers by the kernel, all serve it."""
    return all(version in versions_ready(service) for _ in range(ASKS))


def wait_for(condition, seconds: float = SETTLE_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the condition never held")
        time.sleep(0.1)


def states_folder(service: LiveService) -> Path:
    """The workers' shared folder, from a worker's environment."""
    environment = Path(f"/proc/{service.worker_pids()[-1]}/environ").read_bytes()
    variables = dict(entry.split(b"=", 1) for entry in environment.split(b"\0") if b"=" in entry)
    return Path(variables[STATES_VARIABLE.encode()].decode())


@pytest.fixture
def two_workers(repository: Path):
    with live_service(repository, workers=2, model_control="true") as service:
        yield service


def test_a_load_answers_once_every_worker_serves_it(
    two_workers: LiveService, repository: Path
) -> None:
    write_version(repository, "second", "2", 2)
    response = httpx.post(f"{two_workers.url}/v2/repository/models/mnist_mlp/load", timeout=60)
    assert response.status_code == 200, response.text
    assert every_answer_serves(two_workers, "2")  # at once: no wait after the answer


def test_a_replaced_worker_and_its_siblings_end_up_serving_the_same(
    two_workers: LiveService, repository: Path
) -> None:
    first, second = two_workers.worker_pids()[:2]
    write_version(repository, "second", "2", 2)  # on disk, not loaded: the workers serve "1"
    os.kill(second, signal.SIGKILL)
    wait_for(lambda: len(two_workers.worker_pids()) == 3)  # uvicorn started a replacement
    wait_for(lambda: every_answer_serves(two_workers, "2"))
    assert httpx.get(f"{two_workers.url}/v2/health/ready", timeout=10).status_code == 200
    assert "every worker reloads the repository" in two_workers.log_text()
    assert first in two_workers.worker_pids()


def test_readiness_is_false_while_the_workers_disagree(two_workers: LiveService) -> None:
    folder = states_folder(two_workers)
    # A live process that says it serves something else: this test's own, as a stand-in.
    stranger = folder / f"worker-{os.getpid()}.json"
    stranger.write_text(json.dumps({"mnist_mlp": ["z -"]}))
    try:
        answer = httpx.get(f"{two_workers.url}/v2/health/ready", timeout=10)
    finally:
        stranger.unlink()
    assert answer.status_code == 503
    assert f"worker {os.getpid()} serves mnist_mlp (z@-)" in answer.json()["error"]
    wait_for(lambda: httpx.get(f"{two_workers.url}/v2/health/ready", timeout=10).status_code == 200)
