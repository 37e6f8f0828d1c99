"""Resource usage of a container or a pod sandbox as the CRI's stats report it, beside the
cgroup's (cgroups.usage): the writable layer's bytes and inodes, and the pod's network
interfaces."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from netns.enter import run_in_netns


@dataclass
class DiskUsage:
    timestamp: int
    used_bytes: int
    inodes_used: int


@dataclass
class InterfaceUsage:
    name: str
    rx_bytes: int
    rx_errors: int
    tx_bytes: int
    tx_errors: int


@dataclass
class NetworkUsage:
    timestamp: int
    interfaces: list[InterfaceUsage] = field(default_factory=list)


def disk_usage(path: str) -> DiskUsage:
    """Bytes (allocated blocks) and inodes below path, not crossing into other filesystems."""
    used = inodes = 0
    now = time.time_ns()
    try:
        device = os.lstat(path).st_dev
    except OSError:
        return DiskUsage(now, 0, 0)
    seen: set[int] = set()
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if st.st_dev != device or st.st_ino in seen:
                continue
            seen.add(st.st_ino)
            used += st.st_blocks * 512
            inodes += 1
    return DiskUsage(now, used, inodes)


def network_usage(netns_path: str) -> NetworkUsage:
    """Counters of the interfaces (but lo) of the network namespace at netns_path."""
    now = time.time_ns()
    if not netns_path:
        return NetworkUsage(now)
    try:
        text = run_in_netns(netns_path, _read_net_dev)
    except OSError:
        return NetworkUsage(now)
    return NetworkUsage(now, _parse_net_dev(text))


def _read_net_dev() -> str:
    # thread-self: the namespace this thread joined, not the process's.
    with open("/proc/thread-self/net/dev") as f:
        return f.read()


def _parse_net_dev(text: str) -> list[InterfaceUsage]:
    found = []
    for line in text.splitlines()[2:]:
        name, _, counters = line.partition(":")
        values = counters.split()
        if name.strip() == "lo" or len(values) < 11:
            continue
        found.append(InterfaceUsage(name.strip(), int(values[0]), int(values[2]),
                                    int(values[8]), int(values[10])))
    return found
