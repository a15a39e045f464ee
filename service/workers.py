"""How many worker processes serve: ``SCORING_WORKERS``, else the CPUs the container may use."""

from __future__ import annotations

import math
import os
from pathlib import Path

from scoring.core.settings import integer_setting

WORKERS_SETTING = "SCORING_WORKERS"
CGROUP_ROOT = Path("/sys/fs/cgroup")


def available_cpus(cgroup_root: Path = CGROUP_ROOT) -> int:
    """The CPUs this process may run on (``sched_getaffinity``), capped by the cgroup's CPU
    quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``) rounded down,
    at least 1: a pod limited to 2 CPUs on a 64-core node gets 2 workers, not 64, and a
    fraction of a CPU never gets a worker that the quota would throttle."""
    cpus = len(os.sched_getaffinity(0))
    quota = _cgroup_quota(cgroup_root)
    if quota is not None:
        cpus = min(cpus, math.floor(quota))
    return max(1, cpus)


def _cgroup_quota(root: Path) -> float | None:
    """CPUs' worth of quota, ``None`` when unlimited or unreadable."""
    try:
        v2 = root / "cpu.max"
        if v2.exists():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        v1 = root / "cpu" / "cpu.cfs_quota_us"
        if v1.exists():
            quota = int(v1.read_text())
            period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
            return None if quota <= 0 else quota / period
    except (OSError, ValueError, ZeroDivisionError):
        return None
    return None


def serving_workers(cgroup_root: Path = CGROUP_ROOT) -> int:
    """``SCORING_WORKERS`` (a positive integer) when set, else :func:`available_cpus`; a
    value that is not a positive integer is a ``RuntimeError`` naming it (the service
    refuses to start, ``service.lifecycle.check_setting``)."""
    workers = integer_setting(WORKERS_SETTING, "worker processes", digits=4)
    return available_cpus(cgroup_root) if workers is None else workers
