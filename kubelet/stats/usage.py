"""One cgroup's CPU and memory usage as the kubelet reports it (cadvisor's figures): cumulative
CPU time, memory usage, working set (usage less the inactive file cache: total_inactive_file
on cgroup v1, inactive_file on v2), RSS, page faults, swap."""
from __future__ import annotations

import time
from dataclasses import dataclass

import cgroups
from cgroups.files import read_keyed


@dataclass
class Usage:
    time: float                 # when it was read, seconds since the epoch
    cpu_ns: int
    memory_usage: int
    working_set: int
    rss: int
    page_faults: int
    major_page_faults: int
    swap: int


def read(path: str, known: cgroups.Hierarchies | None = None) -> Usage | None:
    """The usage of the cgroup at path (and its descendants); None if it does not exist."""
    cg = cgroups.open_cgroup(path, known)
    dirs = cg.hierarchy_dirs()
    memory_dir = dirs.get("memory") or dirs.get("")
    if memory_dir is None or not cg.exists():
        return None
    now = time.time()
    stats = cg.stats()
    try:
        stat = read_keyed(memory_dir + "/memory.stat")
    except OSError:
        return None
    unified = "" in dirs
    inactive = stat.get("inactive_file" if unified else "total_inactive_file", 0)
    rss = stat.get("anon", 0) if unified else stat.get("total_rss", 0)
    faults = stat.get("pgfault" if unified else "total_pgfault", 0)
    major = stat.get("pgmajfault" if unified else "total_pgmajfault", 0)
    return Usage(now, stats.cpu_usage_ns, stats.memory_usage,
                 max(stats.memory_usage - inactive, 0), rss, faults, major, stats.swap_usage)
