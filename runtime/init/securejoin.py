"""Resolve a path inside a root filesystem the way the container will see it.

A container image may hold symlinks such as /etc -> /host-etc or ../../.. : following them with
the host's view would let a mount destination escape the rootfs. Every symlink met while walking is
resolved as if the root were "/", so the result always stays under it.

`join` gives a string (for reading an image's files before any container exists). What the
container's init mounts onto or creates goes through `walk`, on descriptors: each step opens one
name relative to the directory before it, never following a symlink by itself, so a component
swapped for a symlink between two steps cannot lead out of the root (CVE-2021-30465).
"""
from __future__ import annotations

import errno
import os
import stat

_MAX_SYMLINKS = 40  # the kernel's own limit (MAXSYMLINKS)
_O_LOOKUP = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


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


class Found:
    """What `walk` reached: an O_PATH descriptor (the caller closes it), the path inside the root
    it was reached by (symlinks resolved), and its stat."""
    __slots__ = ("fd", "path", "st")

    def __init__(self, fd: int, path: str, st: os.stat_result) -> None:
        self.fd = fd
        self.path = path
        self.st = st


def walk(root_fd: int, path: str, create: str | None = None, follow_last: bool = True) -> Found:
    """Resolves `path` under the directory `root_fd` as if it were "/".

    create: None (what is missing raises FileNotFoundError), "dir" (missing components are made
    directories) or "file" (missing parents are made directories, the last an empty file).
    follow_last=False: a symlink as the last component is returned itself, not followed.
    """
    stack: list[tuple[int, str, os.stat_result]] = []  # what is below the root, each held open
    pending = [c for c in path.split("/") if c]
    pending.reverse()
    links = made = 0
    try:
        while pending:
            part = pending.pop()
            if part == ".":
                continue
            if part == "..":
                if stack:  # ".." of the root is the root, as for the container
                    os.close(stack.pop()[0])
                continue
            here = stack[-1][0] if stack else root_fd
            last = not pending
            try:
                fd = os.open(part, _O_LOOKUP, dir_fd=here)
            except FileNotFoundError:
                if create is None:
                    raise
                made += 1
                if made > 2 * _MAX_SYMLINKS:  # made and gone again, over and over: give up
                    raise
                _make(here, part, "file" if last and create == "file" else "dir")
                pending.append(part)  # and look again: whatever is there now is checked
                continue
            st = os.fstat(fd)
            if stat.S_ISLNK(st.st_mode) and (follow_last or not last):
                target = os.readlink("", dir_fd=fd)
                os.close(fd)
                links += 1
                if links > _MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, f"too many levels of symbolic links in {path}",
                                  path)
                if target.startswith("/"):
                    _close_all(stack)
                pending.extend(reversed([c for c in target.split("/") if c]))
                continue
            if not last and not stat.S_ISDIR(st.st_mode):
                os.close(fd)
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR),
                                         "/" + "/".join([n for _, n, _ in stack] + [part]))
            stack.append((fd, part, st))
        if not stack:
            fd = os.dup(root_fd)
            return Found(fd, "/", os.fstat(fd))
        inside = "/" + "/".join(name for _, name, _ in stack)
        fd, _, st = stack.pop()
        return Found(fd, inside, st)
    finally:
        _close_all(stack)


def _make(dir_fd: int, name: str, kind: str) -> None:
    try:
        if kind == "dir":
            os.mkdir(name, 0o755, dir_fd=dir_fd)
        else:
            os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_WRONLY |
                             os.O_CLOEXEC, 0o644, dir_fd=dir_fd))
    except FileExistsError:  # made meanwhile (or a dangling symlink): looked at again
        pass


def _close_all(stack: list[tuple[int, str, os.stat_result]]) -> None:
    while stack:
        os.close(stack.pop()[0])
