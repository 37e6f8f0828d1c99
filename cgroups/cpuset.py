"""Explaining a refused cpuset.cpus / cpuset.mems write (both drivers)."""
from __future__ import annotations

from cgroups.errors import CgroupError
from cgroups.files import read_text


def refused(error: OSError, directory: str, key: str, value: str) -> CgroupError:
    """The kernel refuses CPUs or memory nodes outside the parent's: say which ones it has."""
    parent = directory.rsplit("/", 1)[0]
    allowed = None
    for name in (f"cpuset.effective_{key}", f"cpuset.{key}.effective"):  # v1, v2
        try:
            allowed = read_text(f"{parent}/{name}").strip()
            break
        except OSError:
            continue
    hint = f" (the parent cgroup has {allowed!r})" if allowed else ""
    return CgroupError(f"linux.resources.cpu.{key}: {value!r} was refused: {error.strerror}{hint}")
