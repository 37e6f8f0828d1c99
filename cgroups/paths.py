"""OCI linux.cgroupsPath forms -> the cgroup's path relative to each hierarchy's root."""
from __future__ import annotations

from cgroups.errors import CgroupError, SystemdUnavailable
from cgroups.files import read_text

_FIELD = "linux.cgroupsPath"


def resolve_path(cgroups_path: str | None, container_id: str, *, parent: str = "pycontainer",
                 systemd: bool = False) -> str:
    """The cgroup path ("/pycontainer/<id>", ...) for a container.

    None or "" -> /<parent>/<id>; a relative path -> /<parent>/<path>; an absolute path is the
    user's explicit choice and is kept (as runc does); "slice:prefix:name" is the systemd driver's
    form, which we do not have.
    """
    if systemd or _is_systemd_form(cgroups_path):
        raise SystemdUnavailable(f"systemd cgroup driver not available: {_why_no_systemd()}")
    if not container_id or "/" in container_id or container_id in (".", "..") or "\0" in container_id:
        raise CgroupError(f"container id {container_id!r}: must be a non-empty name without '/'")
    base = _clean(parent, "cgroup parent")
    if not base or parent.startswith("/"):
        raise CgroupError(f"cgroup parent {parent!r}: must be a non-empty relative path")
    if not cgroups_path:
        return f"/{base}/{container_id}"
    path = _clean(cgroups_path, _FIELD)
    if cgroups_path.startswith("/"):
        if not path:
            raise CgroupError(f"{_FIELD}: must not be the root cgroup, got {cgroups_path!r}")
        return "/" + path
    return f"/{base}/{path}"


def check_path(path: str) -> None:
    """Refuse a cgroup path that resolve_path could not have produced (relative, root, '..')."""
    if not isinstance(path, str) or not path.startswith("/") or _clean(path, "cgroup path") != path[1:]:
        raise CgroupError(f"cgroup path {path!r}: must be absolute and normalized,"
                          " like '/pycontainer/web'")
    if path == "/":
        raise CgroupError("cgroup path '/': must not be the root cgroup")


def _is_systemd_form(cgroups_path: str | None) -> bool:
    return bool(cgroups_path) and not cgroups_path.startswith("/") and cgroups_path.count(":") == 2


def _why_no_systemd() -> str:
    try:
        init = read_text("/proc/1/comm").strip()
    except OSError:
        init = ""
    if init != "systemd":
        return "systemd is not PID 1"
    return "pycontainer manages cgroups through cgroupfs only (use a path, not slice:prefix:name)"


def _clean(path: str, field: str) -> str:
    """path without leading, trailing or doubled slashes; refuses '.', '..' and NUL."""
    if not isinstance(path, str):
        raise CgroupError(f"{field}: must be a string, got {path!r}")
    parts = [p for p in path.split("/") if p]
    for part in parts:
        if part in (".", "..") or "\0" in part:
            raise CgroupError(f"{field}: must not contain {part!r}, got {path!r}")
    return "/".join(parts)
