"""Python faces of the syscalls the standard library lacks (clone, unshare, setns, pivot_root...;
mount(2) is overlay.mount's).

Every failure raises OSError with the errno and the call's arguments, so an error that crosses the
init/runtime boundary keeps its cause.
"""
from __future__ import annotations

import os

from runtime._syscalls import ffi, lib

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080


PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ffi.errno
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def clone(flags: int) -> int:
    """fork() with namespace flags; returns 0 in the child and the child's PID in the parent."""
    return _check(lib.pyc_clone(flags), "clone")


def clone_into(flags: int, cgroup_fd: int) -> int:
    """clone() whose child starts in the cgroup v2 directory `cgroup_fd` (clone3 with
    CLONE_INTO_CGROUP)."""
    return _check(lib.pyc_clone_into(flags, cgroup_fd), "clone3 into cgroup")


def unshare(flags: int) -> None:
    _check(lib.unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    _check(lib.setns(fd, nstype), "setns")


def pivot_root(new_root: str, put_old: str) -> None:
    _check(lib.pyc_pivot_root(new_root.encode(), put_old.encode()), f"pivot_root {new_root}")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(lib.sethostname(raw, len(raw)), "sethostname")


def setdomainname(name: str) -> None:
    raw = name.encode()
    _check(lib.setdomainname(raw, len(raw)), "setdomainname")


def join_session_keyring(name: str) -> None:
    _check(lib.pyc_join_session_keyring(name.encode()), "join session keyring")


def ambient_clear_all() -> None:
    _check(lib.pyc_prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0), "clear ambient capabilities")


def ambient_raise(cap: int) -> None:
    _check(lib.pyc_prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap), f"raise ambient capability {cap}")


def send_fd(sock: int, fd: int, name: str) -> None:
    _check(lib.pyc_send_fd(sock, fd, name.encode()), "send fd over console socket")
