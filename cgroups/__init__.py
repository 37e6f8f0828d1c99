"""Linux control groups for pycontainer: one Cgroup interface, a v1 and a v2 driver.

    import cgroups
    cg = cgroups.open_cgroup(cgroups.resolve_path(None, "web"))   # "/pycontainer/web"
    cg.validate(resources); cg.create(); cg.apply(resources); cg.add_process(pid)

Kept lean: it is on the container start path (only os, errno, time and our modules; on v2, math
for cpu shares and ctypes + struct for device rules, when those are given).
"""
from __future__ import annotations

from cgroups import mode
from cgroups.base import FROZEN, THAWED, Cgroup
from cgroups.errors import CgroupError, SystemdUnavailable
from cgroups.paths import check_path, resolve_path
from cgroups.validate import validate_resources

__all__ = ["FROZEN", "THAWED", "Cgroup", "CgroupError", "CgroupStats", "Hierarchies",
           "SystemdUnavailable", "detect_mode", "hierarchies", "open_cgroup", "resolve_path",
           "validate_resources"]

Hierarchies = mode.Hierarchies


def detect_mode() -> str:
    """"v1", "v2" or "hybrid" (v1 controllers plus a cgroup2 mount), for this host."""
    return mode.detect().mode


def hierarchies() -> Hierarchies:
    """This host's cgroup mounts, read from /proc/self/mountinfo (whose cost grows with the
    number of mounts: keep the answer where it is needed again, as the runtime's state does)."""
    return mode.detect()


def open_cgroup(path: str, known: Hierarchies | None = None) -> Cgroup:
    """The cgroup at path (from resolve_path) with the driver for this host (for the hierarchies
    given, else those detected now); touches nothing."""
    check_path(path)
    hierarchies = known or mode.detect()
    if hierarchies.mode == mode.V2:
        from cgroups.v2 import V2Cgroup
        return V2Cgroup(path, hierarchies.unified)
    from cgroups.v1 import V1Cgroup
    return V1Cgroup(path, hierarchies)


def __getattr__(name: str):
    # The stats dataclass costs the dataclasses import: only for those who ask.
    if name == "CgroupStats":
        from cgroups.stats import CgroupStats
        return CgroupStats
    raise AttributeError(f"module 'cgroups' has no attribute {name!r}")
