"""Reading a file of a mounted image root filesystem as the container would see it: symlinks
are resolved inside the root (an image's /etc/passwd -> /host/etc/passwd stays in the image)."""
from __future__ import annotations

import os
import stat

_MAX_LINKS = 40
_MAX_SIZE = 4 << 20


def read_text(root: str, path: str) -> str | None:
    """The file's text, or None if the image has no such regular file."""
    parts = [p for p in path.split("/") if p]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == ".":
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            st = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > _MAX_LINKS:
                return None
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts[:0] = [p for p in target.split("/") if p]
            continue
        resolved.append(part)
    full = os.path.join(root, *resolved)
    try:
        fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return f.read(_MAX_SIZE).decode("utf-8", "replace")
