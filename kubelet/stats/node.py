"""The node's own usage, from /proc as cadvisor reads the root container's: CPU time spent
outside idle and iowait, memory in use (MemTotal - MemFree) and its working set (less the
inactive file cache), swap, boot time, and the interfaces' traffic."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

from kubelet import machine
from cgroups.usage import Usage

# /proc/stat's cpu line: user nice system idle iowait irq softirq steal (guest time is in user)
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)


@dataclass
class Interface:
    name: str
    rx_bytes: int
    rx_errors: int
    tx_bytes: int
    tx_errors: int


def usage() -> Usage:
    now = time.time_ns()
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    ns_per_tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    cpu_ns = sum(fields[i] for i in _BUSY_FIELDS if i < len(fields)) * ns_per_tick
    mem = machine.meminfo()
    used = mem.get("MemTotal", 0) - mem.get("MemFree", 0)
    working_set = max(used - mem.get("Inactive(file)", 0), 0)
    swap = mem.get("SwapTotal", 0) - mem.get("SwapFree", 0)
    rss = mem.get("AnonPages", 0)
    return Usage(now, cpu_ns, used, working_set, rss, 0, 0, swap)


def boot_time() -> float:
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("btime "):
                return float(line.split()[1])
    return 0.0


def interfaces(pid: int | str = "self") -> list[Interface]:
    """The interfaces of the network namespace pid is in, but loopback (/proc/<pid>/net/dev
    shows the namespace of that process, so no setns is needed); [] if pid is gone."""
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            lines = f.read().splitlines()[2:]
    except OSError:
        return []
    found = []
    for line in lines:
        name, _, rest = line.partition(":")
        v = rest.split()
        if name.strip() == "lo" or len(v) < 11:
            continue
        found.append(Interface(name.strip(), int(v[0]), int(v[2]), int(v[8]), int(v[10])))
    return found
