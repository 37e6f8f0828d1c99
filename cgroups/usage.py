"""One cgroup's CPU and memory usage as cadvisor reports it, for the kubelet's stats and the
CRI's: cumulative CPU time, memory usage, working set (usage less the inactive file cache:
total_inactive_file on cgroup v1, inactive_file on v2), RSS, page faults, swap, what is left
under the limit, and the process count. Not on the container start path."""
from __future__ import annotations

import time
from dataclasses import dataclass

import cgroups
from cgroups.files import read_keyed


@dataclass
class Usage:
    timestamp: int                  # when it was read, ns since the epoch (the CRI's unit)
    cpu_ns: int
    memory_usage: int
    working_set: int
    rss: int
    page_faults: int
    major_page_faults: int
    swap: int
    available: int = 0              # limit less working set; 0 without a limit
    processes: int = 0

    @property
    def time(self) -> float:
        """When it was read, seconds since the epoch."""
        return self.timestamp / 1e9


def read(path: str, known: cgroups.Hierarchies | None = None) -> Usage | None:
    """The usage of the cgroup at path (with its descendants); None if it does not exist."""
    try:
        cg = cgroups.open_cgroup(path, known)
    except (ValueError, OSError):
        return None
    dirs = cg.hierarchy_dirs()
    memory_dir = dirs.get("memory") or dirs.get("")
    if memory_dir is None or not cg.exists():
        return None
    now = time.time_ns()
    try:
        stats = cg.stats()
        stat = read_keyed(memory_dir + "/memory.stat")
    except OSError:
        return None
    unified = "" in dirs
    inactive = stat.get("inactive_file" if unified else "total_inactive_file", 0)
    working_set = max(stats.memory_usage - inactive, 0)
    limit = stats.memory_limit
    return Usage(
        now, stats.cpu_usage_ns, stats.memory_usage, working_set,
        stat.get("anon", 0) if unified else stat.get("total_rss", 0),
        stat.get("pgfault" if unified else "total_pgfault", 0),
        stat.get("pgmajfault" if unified else "total_pgmajfault", 0), stats.swap_usage,
        max(limit - working_set, 0) if limit else 0, stats.pids_current)
