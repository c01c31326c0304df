"""The workers' shared folder (service.inference.worker_states): the first worker to publish
sets what is wanted; a worker that serves something else is named, with its versions; a worker
whose process is gone no longer counts; a wait for agreement ends with what is still apart;
a load that a worker does not follow is a 503 naming it."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from service.inference import model_control
from service.inference.dataplane import DataPlane
from service.inference.repository import open_repository
from service.inference.worker_states import STATES_VARIABLE, WorkerStates
from service.settings import Settings
from tests.support.models import write_model

WANTED = {"mnist_mlp": ["a 1111111111", "b 2222222222"]}
OTHER = {"mnist_mlp": ["a 1111111111"]}


def gone_pid() -> int:
    """The PID of a process that has ended."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_the_first_to_publish_sets_what_is_wanted_and_agreement_is_empty(tmp_path: Path) -> None:
    states = WorkerStates(tmp_path)
    states.publish(WANTED)
    assert states.wanted() == WANTED
    WorkerStates(tmp_path, pid=os.getppid()).publish(WANTED)
    assert states.disagreements() == []


def test_a_worker_serving_something_else_is_named_until_it_catches_up(tmp_path: Path) -> None:
    states = WorkerStates(tmp_path)
    states.publish(WANTED)
    sibling = WorkerStates(tmp_path, pid=os.getppid())
    sibling.publish(OTHER)
    assert states.disagreements() == [
        f"worker {os.getppid()} serves mnist_mlp (a@11111111), "
        "not mnist_mlp (a@11111111, b@22222222)"
    ]
    assert states.wait_for_agreement(0.1) == states.disagreements()
    sibling.publish(WANTED)
    assert states.wait_for_agreement(0.1) == []


def test_a_worker_that_is_gone_or_withdrew_no_longer_counts(tmp_path: Path) -> None:
    states = WorkerStates(tmp_path)
    states.publish(WANTED)
    WorkerStates(tmp_path, pid=gone_pid()).publish(OTHER)
    assert states.disagreements() == []
    sibling = WorkerStates(tmp_path, pid=os.getppid())
    sibling.publish(OTHER)
    sibling.withdraw()
    assert list(states.workers()) == [os.getpid()]


def test_a_load_that_a_worker_does_not_follow_is_503_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "model").mkdir()
    settings = Settings(model_path=write_model(tmp_path / "model"), access_log=False)
    dataplane = DataPlane(settings)
    dataplane.serve_repository(open_repository(settings))
    folder = tmp_path / "states"
    folder.mkdir()
    monkeypatch.setenv(STATES_VARIABLE, str(folder))
    monkeypatch.setattr(model_control, "AGREEMENT_SECONDS", 0.2)
    WorkerStates(folder, pid=os.getppid()).publish({"mnist_mlp": ["0 -"]})  # never catches up
    supervisor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with pytest.raises(model_control.WorkersDisagree) as refused:
            model_control._pass_on(dataplane, "mnist_mlp", supervisor.pid)
    finally:
        supervisor.kill()
        supervisor.wait()
    assert refused.value.status_code == 503
    assert f"worker {os.getppid()} serves mnist_mlp (0@-)" in refused.value.message
    assert supervisor.returncode == -signal.SIGHUP  # the others were told to reload
