"""Python faces of the syscalls the standard library lacks (clone, unshare, setns, mount...).

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

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 0x20000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000
MS_RELATIME = 0x200000
MS_I_VERSION = 0x800000
MS_STRICTATIME = 0x1000000
MS_LAZYTIME = 0x2000000

MNT_DETACH = 0x2

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


def unshare(flags: int) -> None:
    _check(lib.unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    _check(lib.setns(fd, nstype), "setns")


def mount(source: str | None, target: str, fstype: str | None = None, flags: int = 0,
          data: str | None = None) -> None:
    src = source.encode() if source is not None else ffi.NULL
    fst = fstype.encode() if fstype is not None else ffi.NULL
    dat = data.encode() if data else ffi.NULL
    if lib.mount(src, target.encode(), fst, flags, dat) < 0:
        err = ffi.errno
        raise OSError(err, f"mount {source or 'none'} on {target} (type {fstype or 'none'}, "
                           f"flags {flags:#x}{', ' + data if data else ''}): {os.strerror(err)}")


def umount2(target: str, flags: int = 0) -> None:
    _check(lib.umount2(target.encode(), flags), f"umount {target}")


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
