"""The CPUs the service sizes its thread pools by: affinity, capped by a cgroup v2 CPU quota."""

import os
from pathlib import Path

import pytest

from service.inference.cpus import available_cpus

AFFINITY = len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [
        ("max 100000\n", AFFINITY),
        ("100000 100000\n", 1),
        ("150000 100000\n", min(2, AFFINITY)),
        ("50000 100000\n", 1),
        ("6400000 100000\n", AFFINITY),
        ("garbage\n", AFFINITY),
        ("100000 0\n", AFFINITY),
    ],
)
def test_a_quota_caps_the_cpus_and_rounds_up(tmp_path: Path, cpu_max: str, expected: int) -> None:
    path = tmp_path / "cpu.max"
    path.write_text(cpu_max)
    assert available_cpus(path) == expected


def test_without_a_cgroup_file_the_affinity_counts(tmp_path: Path) -> None:
    assert available_cpus(tmp_path / "missing") == AFFINITY
