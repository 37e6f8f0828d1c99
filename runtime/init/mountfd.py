"""Mounts made onto descriptors rather than paths, so what gets covered is exactly what was
resolved and checked (runtime.init.securejoin.walk), whatever happens to the path meanwhile.

Bind mounts use the new mount API: open_tree clones the source, move_mount attaches the clone
on top of the target descriptor, and the clone's descriptor stays the new mount's handle. Other
filesystems go through mount(2) with the target given as /proc/self/fd/N (mount(2) alone takes
the type-specific data string as every filesystem expects it); their new mount is then looked
up again and checked to be a different mount from the one it covers.
"""
from __future__ import annotations

import os

from linux import constants as lx
from linux.syscalls import Syscalls

# Looking a checked path up again: nothing may have become a symlink since.
_REOPEN = lx.RESOLVE_IN_ROOT | lx.RESOLVE_NO_SYMLINKS | lx.RESOLVE_NO_MAGICLINKS


def fd_path(fd: int) -> str:
    """The path that makes mount(2) act on what `fd` refers to."""
    return f"/proc/self/fd/{fd}"


def bind(syscalls: Syscalls, source: str | int, target_fd: int, recursive: bool) -> int:
    """Binds `source` (a path as the runtime sees it, or a descriptor: of a file, or of a mount
    to copy) on top of `target_fd`; returns a descriptor of the new mount's root (the caller
    closes it)."""
    flags = lx.OPEN_TREE_CLONE | (lx.AT_RECURSIVE if recursive else 0)
    if isinstance(source, int):
        tree = syscalls.open_tree(source, "", flags | lx.AT_EMPTY_PATH)
    else:
        tree = syscalls.open_tree(lx.AT_FDCWD, source, flags)
    try:
        syscalls.move_mount(tree, target_fd)
    except BaseException:
        os.close(tree)
        raise
    return tree


def check_visible(syscalls: Syscalls, root_fd: int, inside: str, mount_fd: int) -> None:
    """The mount `mount_fd` is what `inside` leads to now: nothing was swapped meanwhile."""
    fd = syscalls.openat2(root_fd, inside, os.O_PATH, _REOPEN)
    try:
        if syscalls.mount_id(fd) != syscalls.mount_id(mount_fd):
            raise OSError(0, f"{inside}: the new mount is not where it was made (moved meanwhile)")
    finally:
        os.close(fd)


def mount_new(syscalls: Syscalls, root_fd: int, target_fd: int, inside: str,
              source: str | None, fstype: str, flags: int, data: str | None) -> int:
    """Mounts a new `fstype` filesystem on top of `target_fd`, which is `inside` the root
    `root_fd`; returns a descriptor of the new mount's root (the caller closes it)."""
    syscalls.mount(source, fd_path(target_fd), fstype, flags, data)
    return reopen_top(syscalls, root_fd, target_fd, inside)


def reopen_top(syscalls: Syscalls, root_fd: int, covered_fd: int, inside: str) -> int:
    """The mount now on top of `inside`, which must not be the one `covered_fd` is on."""
    fd = syscalls.openat2(root_fd, inside, os.O_PATH, _REOPEN)
    if syscalls.mount_id(fd) == syscalls.mount_id(covered_fd):
        os.close(fd)
        raise OSError(0, f"{inside}: the new mount is not where it was made (moved meanwhile)")
    return fd


def remount(syscalls: Syscalls, fd: int, flags: int, data: str | None = None) -> None:
    """Remounts the mount whose root is `fd` with `flags`, keeping the flags the kernel would
    refuse to clear on a mount inherited from a more privileged mount namespace."""
    current = os.fstatvfs(fd).f_flag & (lx.MS_NOSUID | lx.MS_NODEV | lx.MS_NOEXEC)
    syscalls.mount(None, fd_path(fd), None, lx.MS_REMOUNT | flags | current, data)


def set_propagation(syscalls: Syscalls, fd: int, flag: int) -> None:
    syscalls.mount(None, fd_path(fd), None, flag)


def read_only_bind(syscalls: Syscalls, target_fd: int) -> int:
    """A read-only recursive bind of `target_fd` onto itself, as mount --bind -o ro; returns the
    new mount's descriptor."""
    tree = syscalls.open_tree(target_fd, "",
                              lx.OPEN_TREE_CLONE | lx.AT_RECURSIVE | lx.AT_EMPTY_PATH)
    try:
        # Set on the detached copy: only its top mount, as a remount of a bind would.
        syscalls.mount_setattr(tree, lx.MOUNT_ATTR_RDONLY)
        syscalls.move_mount(tree, target_fd)
    except BaseException:
        os.close(tree)
        raise
    return tree


def empty_read_only_tmpfs(syscalls: Syscalls) -> int:
    """A detached, read-only, empty tmpfs (for masked directories)."""
    context = syscalls.fsopen("tmpfs")
    try:
        syscalls.fsconfig(context, lx.FSCONFIG_SET_STRING, "nr_blocks", "1")
        syscalls.fsconfig(context, lx.FSCONFIG_SET_STRING, "nr_inodes", "1")
        syscalls.fsconfig(context, lx.FSCONFIG_CMD_CREATE)
        return syscalls.fsmount(context, lx.MOUNT_ATTR_RDONLY | lx.MOUNT_ATTR_NOSUID |
                                lx.MOUNT_ATTR_NODEV | lx.MOUNT_ATTR_NOEXEC)
    finally:
        os.close(context)
