"""Mounts made onto descriptors rather than paths, so what gets covered is exactly what was
resolved and checked (runtime.securejoin.walk), whatever happens to the path meanwhile.

Bind mounts use the new mount API: open_tree clones the source, move_mount attaches the clone
on top of the target descriptor, and the clone's descriptor stays the new mount's handle. Other
filesystems go through mount(2) with the target given as /proc/self/fd/N (mount(2) alone takes
the type-specific data string as every filesystem expects it); their new mount is then looked
up again and checked to be a different mount from the one it covers.
"""
from __future__ import annotations

import os

from overlay import mount as mnt
from runtime import syscalls as s

AT_FDCWD = -100
# Looking a checked path up again: nothing may have become a symlink since.
_REOPEN = s.RESOLVE_IN_ROOT | s.RESOLVE_NO_SYMLINKS | s.RESOLVE_NO_MAGICLINKS


def fd_path(fd: int) -> str:
    """The path that makes mount(2) act on what `fd` refers to."""
    return f"/proc/self/fd/{fd}"


def bind(source: str | int, target_fd: int, recursive: bool) -> int:
    """Binds `source` (a path as the runtime sees it, or a descriptor: of a file, or of a mount
    to copy) on top of `target_fd`; returns a descriptor of the new mount's root (the caller
    closes it)."""
    flags = s.OPEN_TREE_CLONE | (s.AT_RECURSIVE if recursive else 0)
    if isinstance(source, int):
        tree = s.open_tree(source, "", flags | s.AT_EMPTY_PATH)
    else:
        tree = s.open_tree(AT_FDCWD, source, flags)
    try:
        s.move_mount_fds(tree, target_fd)
    except BaseException:
        os.close(tree)
        raise
    return tree


def check_visible(root_fd: int, inside: str, mount_fd: int) -> None:
    """The mount `mount_fd` is what `inside` leads to now: nothing was swapped meanwhile."""
    fd = s.openat2(root_fd, inside, os.O_PATH, _REOPEN)
    try:
        if s.mount_id(fd) != s.mount_id(mount_fd):
            raise OSError(0, f"{inside}: the new mount is not where it was made (moved meanwhile)")
    finally:
        os.close(fd)


def mount_new(root_fd: int, target_fd: int, inside: str, source: str | None, fstype: str,
              flags: int, data: str | None) -> int:
    """Mounts a new `fstype` filesystem on top of `target_fd`, which is `inside` the root
    `root_fd`; returns a descriptor of the new mount's root (the caller closes it)."""
    mnt.mount(source, fd_path(target_fd), fstype, flags, data)
    return reopen_top(root_fd, target_fd, inside)


def reopen_top(root_fd: int, covered_fd: int, inside: str) -> int:
    """The mount now on top of `inside`, which must not be the one `covered_fd` is on."""
    fd = s.openat2(root_fd, inside, os.O_PATH, _REOPEN)
    if s.mount_id(fd) == s.mount_id(covered_fd):
        os.close(fd)
        raise OSError(0, f"{inside}: the new mount is not where it was made (moved meanwhile)")
    return fd


def remount(fd: int, flags: int, data: str | None = None) -> None:
    """Remounts the mount whose root is `fd` with `flags`, keeping the flags the kernel would
    refuse to clear on a mount inherited from a more privileged mount namespace."""
    current = os.fstatvfs(fd).f_flag & (mnt.MS_NOSUID | mnt.MS_NODEV | mnt.MS_NOEXEC)
    mnt.mount(None, fd_path(fd), None, mnt.MS_REMOUNT | flags | current, data)


def set_propagation(fd: int, flag: int) -> None:
    mnt.mount(None, fd_path(fd), None, flag)


def read_only_bind(target_fd: int) -> int:
    """A read-only recursive bind of `target_fd` onto itself, as mount --bind -o ro; returns the
    new mount's descriptor."""
    tree = s.open_tree(target_fd, "", s.OPEN_TREE_CLONE | s.AT_RECURSIVE | s.AT_EMPTY_PATH)
    try:
        # Set on the detached copy: only its top mount, as a remount of a bind would.
        s.mount_setattr_fd(tree, s.MOUNT_ATTR_RDONLY)
        s.move_mount_fds(tree, target_fd)
    except BaseException:
        os.close(tree)
        raise
    return tree


def empty_read_only_tmpfs() -> int:
    """A detached, read-only, empty tmpfs (for masked directories)."""
    context = s.fsopen("tmpfs")
    try:
        s.fsconfig(context, s.FSCONFIG_SET_STRING, "nr_blocks", "1")
        s.fsconfig(context, s.FSCONFIG_SET_STRING, "nr_inodes", "1")
        s.fsconfig(context, s.FSCONFIG_CMD_CREATE)
        return s.fsmount(context, s.MOUNT_ATTR_RDONLY | s.MOUNT_ATTR_NOSUID | s.MOUNT_ATTR_NODEV |
                         s.MOUNT_ATTR_NOEXEC)
    finally:
        os.close(context)
