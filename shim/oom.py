"""Was the container OOM-killed? The count of OOM kills in its memory cgroup (the oom_kill counter
that the cgroups stats report) rose between its start and its end.

The cgroup is found from /proc/<init>/cgroup while the init runs, so any runtime's layout works,
and read again at the init's end, before `delete` removes the cgroup. Only the one counter file
is read: Cgroup.stats() would also load dataclasses (1.5 MiB more in the zygote) for the rest.
"""
from __future__ import annotations

from cgroups import mode
from cgroups.files import read_keyed


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
    hierarchies = mode.detect()
    if "memory" in hierarchies.v1:
        counters = hierarchies.v1["memory"] + cgroup_path + "/memory.oom_control"
    elif hierarchies.unified:
        counters = hierarchies.unified + cgroup_path + "/memory.events"
    else:
        return 0
    try:
        return read_keyed(counters).get("oom_kill", 0)
    except (OSError, ValueError):
        return 0
