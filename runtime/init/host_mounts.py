"""Mounts a container without a mount namespace of its own makes in the caller's: found by
comparing the caller's mount table before and after, and removed at delete, so the caller's
mount table ends as it began."""
from __future__ import annotations

import os

from linux import constants as lx
from linux.syscalls import Syscalls


def _table() -> list[tuple[str, str]]:
    """(mount ID, mount point) in the order the kernel lists them (parents first)."""
    with open("/proc/self/mountinfo") as f:
        return [(fields[0], _unescape(fields[4])) for fields in (line.split(" ", 5) for line in f)]


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash as \\ooo octal escapes.
    if "\\" not in field:
        return field
    return field.encode().decode("unicode_escape").encode("latin-1").decode(errors="replace")


def snapshot() -> set[str]:
    return {mount_id for mount_id, _ in _table()}


def made_since(before: set[str], root: str) -> list[str]:
    """Mount points under `root` that are new since `before`, in the order they were made."""
    root = os.path.realpath(root).rstrip("/") + "/"
    return [point for mount_id, point in _table()
            if mount_id not in before and (point + "/").startswith(root)]


def remove(syscalls: Syscalls, points: list[str]) -> None:
    """Detaches each mount point, the last made first; those gone already are skipped."""
    for point in reversed(points):
        try:
            syscalls.umount2(point, lx.MNT_DETACH)
        except OSError:
            pass
