"""Resolve a path inside a root filesystem the way the container will see it.

A container image may hold symlinks such as /etc -> /host-etc or ../../.. : following them with
the host's view would let a mount destination escape the rootfs. Every symlink met while walking is
resolved as if `root` were "/", so the result always stays under `root`.
"""
from __future__ import annotations

import os

_MAX_SYMLINKS = 255


def join(root: str, path: str) -> str:
    root = os.path.normpath(root)
    resolved: list[str] = []
    pending = [c for c in path.split("/") if c]
    pending.reverse()
    links = 0
    while pending:
        part = pending.pop()
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            target = os.readlink(candidate)
        except OSError:  # not a symlink, or does not exist (yet): take it as it is
            resolved.append(part)
            continue
        links += 1
        if links > _MAX_SYMLINKS:
            raise OSError(40, f"too many levels of symbolic links resolving {path} in {root}")
        if target.startswith("/"):
            resolved = []
        pending.extend(reversed([c for c in target.split("/") if c]))
    return os.path.join(root, *resolved)
