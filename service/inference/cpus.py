"""How many CPUs this process may really use: its affinity, and a container's CPU quota.

``os.cpu_count()`` counts the host's cores: in a pod limited to one CPU on a 32-core node, a
32-thread onnxruntime pool would be throttled by the quota far more than it gained.
"""

import math
import os
from pathlib import Path

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def available_cpus(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """The CPUs this process may be scheduled on, capped by the cgroup v2 quota (rounded up)."""
    if hasattr(os, "sched_getaffinity"):
        usable = len(os.sched_getaffinity(0))
    else:
        usable = os.cpu_count() or 1
    quota = _quota(cpu_max)
    return max(1, usable if quota is None else min(usable, quota))


def _quota(cpu_max: Path) -> int | None:
    """``cpu.max`` is "max 100000" without a limit, else "<quota> <period>" in µs."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max" or not quota.isdigit() or not period.isdigit() or int(period) == 0:
        return None
    return math.ceil(int(quota) / int(period))
