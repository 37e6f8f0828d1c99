"""Was the container OOM-killed? The count of OOM kills in its memory cgroup (the cgroups stats'
oom_kill) rose between its start and its end.

The cgroup is found from /proc/<init>/cgroup while the init runs, so any runtime's layout works,
and read again at the init's end, before `delete` removes the cgroup.
"""
from __future__ import annotations

import cgroups
# Loaded here so that they load once, in the zygote, shared by every shim; stats() and
# open_cgroup() would import them in each shim (dataclasses and all: ~3 MiB of private pages).
from cgroups import stats, v1, v2  # noqa: F401


def cgroup_of(pid: int) -> str | None:
    """The path of the process's memory cgroup (v1 memory line, else the unified "0::" line)."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    unified = None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return path
        if not controllers:
            unified = path
    return unified


def kill_count(cgroup_path: str | None) -> int:
    """OOM kills so far in the cgroup; 0 when it cannot be read (gone, or no memory controller)."""
    if not cgroup_path or cgroup_path == "/":
        return 0
    try:
        return cgroups.open_cgroup(cgroup_path).stats().oom_kill
    except (OSError, ValueError):
        return 0
