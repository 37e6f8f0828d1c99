"""procfs as the runtime must see it: the real thing, not a look-alike reached through a symlink
or a mount laid over it.

A write meant for /proc/sys/... (a sysctl) or a mount meant to cover a file in /proc (a read-only
or masked path) is resolved from a descriptor of a procfs root, checked with fstatfs to be procfs
and with its inode number to be the root, and never through a symlink; writes also never cross a
mount, so a bind laid over the file cannot redirect them (CVE-2025-52881). Which mounts are
allowed where /proc is the destination follows runc's checkProcMount (CVE-2019-16884,
CVE-2023-27561).
"""
from __future__ import annotations

import os

from linux import constants as lx
from linux.syscalls import Syscalls

PROC_SUPER_MAGIC = 0x9FA0
_PROC_ROOT_INO = 1  # only the root of a procfs has this inode number
# Beneath the procfs root, through no symlink (not even /proc/self) and no other mount.
_STRICT = (lx.RESOLVE_BENEATH | lx.RESOLVE_NO_SYMLINKS | lx.RESOLVE_NO_MAGICLINKS |
           lx.RESOLVE_NO_XDEV)
_BENEATH = lx.RESOLVE_BENEATH | lx.RESOLVE_NO_SYMLINKS | lx.RESOLVE_NO_MAGICLINKS

# Under /proc, mounts may go only on these (what lxcfs emulates), as runc allows.
LXCFS_FILES = frozenset((
    "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
    "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/sys/kernel/ns_last_pid",
    "/proc/sys/crypto/fips_enabled",
))


def is_procfs(syscalls: Syscalls, fd: int) -> bool:
    return syscalls.fstatfs_type(fd) == PROC_SUPER_MAGIC


def is_proc_root(syscalls: Syscalls, fd: int) -> bool:
    return is_procfs(syscalls, fd) and os.fstat(fd).st_ino == _PROC_ROOT_INO


def open_in_root(syscalls: Syscalls, root_fd: int) -> int | None:
    """The /proc of the root `root_fd` if it is a procfs root reached through no symlink, else
    None. The caller closes it."""
    try:
        fd = syscalls.openat2(root_fd, "proc", os.O_PATH | os.O_DIRECTORY,
                              lx.RESOLVE_IN_ROOT | lx.RESOLVE_NO_SYMLINKS |
                              lx.RESOLVE_NO_MAGICLINKS)
    except OSError:
        return None
    if not is_proc_root(syscalls, fd):
        os.close(fd)
        return None
    return fd


def write_sysctl(syscalls: Syscalls, proc_fd: int, key: str, value: str) -> None:
    """Writes /proc/sys/<key> through `proc_fd`, through no symlink and no mount over it."""
    fd = syscalls.openat2(proc_fd, "sys/" + key.replace(".", "/"), os.O_WRONLY | os.O_TRUNC,
                          _STRICT)
    try:
        if not is_procfs(syscalls, fd):
            raise OSError(0, f"/proc/sys/{key} is not on procfs")
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def open_beneath(syscalls: Syscalls, proc_fd: int, sub: str) -> int:
    """O_PATH of /proc/<sub> through no symlink; it must be on procfs (mounts over it are the
    caller's to judge)."""
    fd = syscalls.openat2(proc_fd, sub, os.O_PATH, _BENEATH)
    if not is_procfs(syscalls, fd):
        os.close(fd)
        raise OSError(0, f"/proc/{sub} is not on procfs")
    return fd


def destination_problem(syscalls: Syscalls, inside: str, fstype: str,
                        source_fd: int | None) -> str | None:
    """Why a mount may not go to `inside` (its destination with symlinks resolved), or None.

    /proc itself takes only a procfs (new, or a bind of one: `source_fd`); below /proc only the
    files lxcfs emulates may be covered."""
    if inside == "/proc":
        if fstype == "proc" or (source_fd is not None and is_procfs(syscalls, source_fd)):
            return None
        return "/proc: only a procfs may be mounted there"
    if inside.startswith("/proc/") and inside not in LXCFS_FILES:
        return f"{inside}: inside /proc; refusing to mount over it"
    return None
