"""The share of the node a task may use: cores and memory ÷ task slots × required slots.

Batch runs up to ``taskSlotsPerNode`` tasks side by side and documents no per-task CPU or
memory split, so each task budgets itself: node cores and memory (``WORKER_CORES`` /
``WORKER_MEMORY_MB``, else detected from CPU affinity, the cgroup limits and
``/proc/meminfo``) × ``WORKER_REQUIRED_SLOTS`` ÷ ``WORKER_TASK_SLOTS``. Two tasks on a
2-slot node then get half each instead of both claiming everything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

from .config import Config

_MB = 1000 * 1000
_CGROUP = Path("/sys/fs/cgroup")
_UNLIMITED = 1 << 60  # cgroup v1 reports "no limit" as a huge number


@dataclass(frozen=True)
class Budget:
    """What one task may use, and where the node figures came from (for messages)."""

    node_cores: float
    node_memory: int  # bytes
    task_slots: int
    required_slots: int
    cores_source: str = "detected"
    memory_source: str = "detected"

    @property
    def share(self) -> float:
        """The fraction of the node this task owns (at most the whole node)."""
        return min(1.0, self.required_slots / self.task_slots)

    @property
    def threads(self) -> int:
        """Whole cores for this task, at least one."""
        return max(1, int(self.node_cores * self.share + 1e-9))

    @property
    def memory(self) -> int:
        """Bytes of memory for this task."""
        return int(self.node_memory * self.share)

    def describe(self) -> str:
        """``node 8 cores, 32000 MB (/proc/meminfo) x 1/2 slots = 4 threads, 16000 MB``."""
        return (
            f"node {self.node_cores:g} cores ({self.cores_source}), "
            f"{self.node_memory // _MB} MB ({self.memory_source}) "
            f"x WORKER_REQUIRED_SLOTS={self.required_slots} / "
            f"WORKER_TASK_SLOTS={self.task_slots} = {self.threads} thread(s), "
            f"{self.memory // _MB} MB"
        )


def task_budget(config: Config) -> Budget:
    """This task's budget from the configuration and the machine."""
    if config.cores is not None:
        cores, cores_source = float(config.cores), "WORKER_CORES"
    else:
        cores, cores_source = node_cores()
    if config.memory_mb is not None:
        memory, memory_source = int(config.memory_mb * _MB), "WORKER_MEMORY_MB"
    else:
        memory, memory_source = node_memory()
    return Budget(
        node_cores=cores,
        node_memory=memory,
        task_slots=config.task_slots,
        required_slots=config.required_slots,
        cores_source=cores_source,
        memory_source=memory_source,
    )


def node_cores() -> Tuple[float, str]:
    """Cores this process may run on: CPU affinity, capped by a cgroup CPU quota."""
    try:
        cores, source = float(len(os.sched_getaffinity(0))), "cpu affinity"
    except AttributeError:  # not Linux
        cores, source = float(os.cpu_count() or 1), "cpu count"
    quota = _cgroup_cpu_quota()
    if quota is not None and quota < cores:
        return quota, "cgroup cpu quota"
    return cores, source


def node_memory() -> Tuple[int, str]:
    """Memory this process may use: RAM, capped by a cgroup memory limit."""
    total = _meminfo_total()
    limit = _cgroup_memory_limit()
    if limit is not None and (total is None or limit < total):
        return limit, "cgroup memory limit"
    if total is not None:
        return total, "/proc/meminfo"
    return _sysconf_memory(), "sysconf"


def _cgroup_cpu_quota() -> Optional[float]:
    v2 = _read(_CGROUP / "cpu.max")  # "max 100000" or "200000 100000"
    if v2:
        quota, _, period = v2.partition(" ")
        return None if quota == "max" else int(quota) / int(period or 100000)
    quota_us = _read(_CGROUP / "cpu" / "cpu.cfs_quota_us")
    period_us = _read(_CGROUP / "cpu" / "cpu.cfs_period_us")
    if quota_us and period_us and int(quota_us) > 0:
        return int(quota_us) / int(period_us)
    return None


def _cgroup_memory_limit() -> Optional[int]:
    raw = _read(_CGROUP / "memory.max") or _read(_CGROUP / "memory" / "memory.limit_in_bytes")
    if not raw or raw == "max" or int(raw) >= _UNLIMITED:
        return None
    return int(raw)


def _meminfo_total() -> Optional[int]:
    text = _read(Path("/proc/meminfo"))
    for line in (text or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


def _sysconf_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 4 * 1024 * _MB  # a guess that keeps DuckDB modest on an unknown machine


def _read(path: Path) -> Optional[str]:
    try:
        return path.read_text().strip()
    except (OSError, ValueError):
        return None
