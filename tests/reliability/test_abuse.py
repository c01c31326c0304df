"""1,000 trickling and 300 vanishing clients at once, twice, beside a normal client (~30 s).

The scenario and its figures are in ``abuse.py`` (``python -m tests.reliability.abuse`` prints
them); here they are checked against what the service promises under abuse.
"""

from pathlib import Path

import pytest

from service.settings import DEFAULT_MODEL_PATH
from tests.reliability.abuse import ABUSERS, ROUNDS, TRICKLERS, AbuseReport, run_scenario

MAX_SLOWDOWN = 10.0
# Memory must come back within 10% of where it was; a second round must add nothing. The
# connections leave a high-water mark in CPython's allocator (~9 KiB of uvicorn's objects per
# connection, 1,300 at once): +7% on the shipped model's 122 MB server, +12% on the 100 MB one
# the tiny test model makes, which gets the looser bound.
MAX_MEMORY_GROWTH = {True: 0.10, False: 0.15}
MAX_REPEAT_GROWTH = 0.02


@pytest.fixture(scope="module")
def shipped() -> bool:
    return DEFAULT_MODEL_PATH.exists()


@pytest.fixture(scope="module")
def report(model_path: Path, shipped: bool) -> AbuseReport:
    """The shipped model when it is built: the figures are then the real service's."""
    return run_scenario(DEFAULT_MODEL_PATH if shipped else model_path)


def test_a_normal_client_is_answered_every_time_and_nearly_as_fast(report: AbuseReport) -> None:
    assert set(report.normal_statuses) == {200}, report.normal_statuses
    assert report.p90(report.abused) <= MAX_SLOWDOWN * report.p90(report.alone), report.rows()


def test_the_abusers_are_client_closed_requests_not_server_errors(report: AbuseReport) -> None:
    assert report.trickle_outcomes == {"hung up": TRICKLERS * ROUNDS}, report.trickle_outcomes
    assert not [status for status in report.server_statuses if status >= 500], report.rows()
    assert report.server_statuses[499] == ABUSERS * ROUNDS, report.rows()
    assert "Traceback" not in report.log
    closed = [line for line in report.log.splitlines() if " 499 " in line]
    assert len(closed) == ABUSERS * ROUNDS
    assert all(" INFO service.access: POST /predict 499 " in line for line in closed), closed[:3]


def test_memory_comes_back_and_a_second_round_adds_nothing(
    report: AbuseReport, shipped: bool
) -> None:
    assert report.memory_growth() <= MAX_MEMORY_GROWTH[shipped], report.rows()
    assert report.repeat_growth() <= MAX_REPEAT_GROWTH, report.rows()
