"""What the node reports about the machine: capacity (CPUs, memory, disk, PIDs), identity
(machine ID, boot ID, OS, kernel, architecture), its addresses, and the signals the pressure
conditions are computed from. Read from /proc, /sys and statvfs, cheap enough for every
node status round."""
from __future__ import annotations

import os
import platform
import socket
from dataclasses import dataclass

from overlay.manifest import host_architecture as architecture  # noqa: F401  (one GOARCH table)


def _read(path: str, default: str = "") -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def meminfo() -> dict[str, int]:
    """Bytes, by /proc/meminfo's field names."""
    result = {}
    for line in _read("/proc/meminfo").splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            result[name] = int(parts[0]) * (1024 if len(parts) > 1 else 1)
    return result


@dataclass
class Capacity:
    cpus: int
    memory: int             # bytes
    storage: int            # bytes of the filesystem holding the root dir
    storage_inodes: int


@dataclass
class Signals:
    """What the pressure conditions compare with their thresholds."""
    memory_available: int
    storage_available: int
    inodes_free: int
    pids_available: int
    pid_max: int


def capacity(root_dir: str) -> Capacity:
    st = os.statvfs(root_dir)
    return Capacity(os.cpu_count() or 1, meminfo().get("MemTotal", 0), st.f_blocks * st.f_frsize,
                    st.f_files)


def signals(root_dir: str) -> Signals:
    st = os.statvfs(root_dir)
    pid_max = int(_read("/proc/sys/kernel/pid_max", "32768") or 32768)
    processes = sum(1 for name in os.listdir("/proc") if name.isdigit())
    return Signals(meminfo().get("MemAvailable", 0), st.f_bavail * st.f_frsize, st.f_favail,
                   pid_max - processes, pid_max)


def node_info() -> dict[str, str]:
    os_release = dict(line.split("=", 1) for line in _read("/etc/os-release").splitlines()
                      if "=" in line)
    machine_id = _read("/etc/machine-id")
    return {
        "machineID": machine_id,
        "systemUUID": _read("/sys/class/dmi/id/product_uuid", machine_id).lower(),
        "bootID": _read("/proc/sys/kernel/random/boot_id"),
        "kernelVersion": platform.release(),
        "osImage": os_release.get("PRETTY_NAME", "Linux").strip('"'),
        "operatingSystem": "linux",
        "architecture": architecture(),
    }


def default_ip() -> str:
    """The address this host uses for its default route (as the kubelet picks the node IP when
    none is given). Connecting a UDP socket only looks the route up: nothing is sent."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("198.51.100.1", 9))
            return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def apparmor_enabled() -> bool:
    """As the kubelet's apparmor.IsEnabled: the module is loaded and switched on."""
    return _read("/sys/module/apparmor/parameters/enabled") == "Y"


def hostname() -> str:
    return socket.gethostname().lower()


_CAP_SYS_RESOURCE = 24


def lowest_oom_score_adj() -> int:
    """The lowest oom_score_adj this process's children can be given: any without limit
    (-1000) when it holds CAP_SYS_RESOURCE, else its own, which the kernel forbids going below
    (containerd's restrictOOMScoreAdj; some sandboxed hosts drop that capability)."""
    effective = next((int(line.split()[1], 16) for line in _read("/proc/self/status")
                      .splitlines() if line.startswith("CapEff:")), 0)
    if effective >> _CAP_SYS_RESOURCE & 1:
        return -1000
    return int(_read("/proc/self/oom_score_adj", "0"))
