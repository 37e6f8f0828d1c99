"""A cgroup's usage figures, read from either hierarchy layout. Imported only by Cgroup.stats()."""
from __future__ import annotations

import os
from dataclasses import dataclass

from cgroups.files import read_int, read_keyed

# v1 reports "no limit" as the largest page-aligned counter (9223372036854771712 with 4 KiB pages).
_V1_UNLIMITED = 1 << 62


@dataclass
class CgroupStats:
    """Usage of one cgroup and its descendants. Limits are None when unlimited; figures a kernel
    does not report are 0 (or None for memory_max_usage)."""

    cpu_usage_ns: int = 0
    cpu_user_ns: int = 0
    cpu_system_ns: int = 0
    cpu_periods: int = 0  # CFS periods with the quota enforced
    cpu_throttled_periods: int = 0
    cpu_throttled_ns: int = 0
    memory_usage: int = 0  # bytes
    memory_max_usage: int | None = None  # peak bytes
    memory_limit: int | None = None
    swap_usage: int = 0  # bytes of swap alone (not memory+swap)
    oom_kill: int = 0  # processes the OOM killer killed in it
    pids_current: int = 0
    pids_limit: int | None = None


def _number(path: str, default: int | None = 0) -> int | None:
    try:
        return read_int(path)
    except FileNotFoundError:
        return default


def _keyed(path: str) -> dict[str, int]:
    try:
        return read_keyed(path)
    except FileNotFoundError:
        return {}


def _v1_limit(value: int | None) -> int | None:
    return None if value is None or value >= _V1_UNLIMITED else value


def read_v1(dirs: dict[str, str]) -> CgroupStats:
    """Stats from the cgroup's directories in the v1 hierarchies (controller -> directory)."""
    s = CgroupStats()
    if "cpuacct" in dirs:
        d = dirs["cpuacct"]
        s.cpu_usage_ns = _number(d + "/cpuacct.usage")
        if os.path.exists(d + "/cpuacct.usage_user"):
            s.cpu_user_ns = _number(d + "/cpuacct.usage_user")
            s.cpu_system_ns = _number(d + "/cpuacct.usage_sys")
        else:  # older kernels: clock ticks in cpuacct.stat
            ticks = _keyed(d + "/cpuacct.stat")
            ns_per_tick = 1000000000 // os.sysconf("SC_CLK_TCK")
            s.cpu_user_ns = ticks.get("user", 0) * ns_per_tick
            s.cpu_system_ns = ticks.get("system", 0) * ns_per_tick
    if "cpu" in dirs:
        cpu = _keyed(dirs["cpu"] + "/cpu.stat")
        s.cpu_periods = cpu.get("nr_periods", 0)
        s.cpu_throttled_periods = cpu.get("nr_throttled", 0)
        s.cpu_throttled_ns = cpu.get("throttled_time", 0)
    if "memory" in dirs:
        d = dirs["memory"]
        s.memory_usage = _number(d + "/memory.usage_in_bytes")
        s.memory_max_usage = _number(d + "/memory.max_usage_in_bytes", None)
        s.memory_limit = _v1_limit(_number(d + "/memory.limit_in_bytes", None))
        memsw = _number(d + "/memory.memsw.usage_in_bytes", None)
        s.swap_usage = max(memsw - s.memory_usage, 0) if memsw is not None else 0
        s.oom_kill = _keyed(d + "/memory.oom_control").get("oom_kill", 0)
    if "pids" in dirs:
        s.pids_current = _number(dirs["pids"] + "/pids.current")
        s.pids_limit = _number(dirs["pids"] + "/pids.max", None)
    return s


def read_v2(d: str) -> CgroupStats:
    """Stats from the cgroup's directory in the unified hierarchy."""
    s = CgroupStats()
    cpu = _keyed(d + "/cpu.stat")
    s.cpu_usage_ns = cpu.get("usage_usec", 0) * 1000
    s.cpu_user_ns = cpu.get("user_usec", 0) * 1000
    s.cpu_system_ns = cpu.get("system_usec", 0) * 1000
    s.cpu_periods = cpu.get("nr_periods", 0)
    s.cpu_throttled_periods = cpu.get("nr_throttled", 0)
    s.cpu_throttled_ns = cpu.get("throttled_usec", 0) * 1000
    s.memory_usage = _number(d + "/memory.current")
    s.memory_max_usage = _number(d + "/memory.peak", None)
    s.memory_limit = _number(d + "/memory.max", None)
    s.swap_usage = _number(d + "/memory.swap.current")
    s.oom_kill = _keyed(d + "/memory.events").get("oom_kill", 0)
    s.pids_current = _number(d + "/pids.current")
    s.pids_limit = _number(d + "/pids.max", None)
    return s
