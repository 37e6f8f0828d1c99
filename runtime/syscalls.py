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


# openat2(2) resolve flags (<linux/openat2.h>)
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

# The new mount API (<linux/mount.h>)
OPEN_TREE_CLONE = 0x1
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOVE_MOUNT_F_EMPTY_PATH = 0x04
MOVE_MOUNT_T_EMPTY_PATH = 0x40
FSOPEN_CLOEXEC = 0x1
FSMOUNT_CLOEXEC = 0x1
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8


def _check_path(ret: int, what: str, path: str) -> int:
    """Like _check, with the path as the OSError's filename."""
    if ret < 0:
        err = ffi.errno
        raise OSError(err, f"{what}: {os.strerror(err)}", path)
    return ret


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """A descriptor for `path` under `dirfd`, resolved under the RESOLVE_* rules; always
    close-on-exec."""
    return _check_path(lib.pyc_openat2(dirfd, path.encode(), flags | os.O_CLOEXEC, mode, resolve),
                       "openat2", path)


def open_tree(dirfd: int, path: str, flags: int) -> int:
    """open_tree(2), close-on-exec; with OPEN_TREE_CLONE, a detached copy of the mount."""
    return _check_path(lib.pyc_open_tree(dirfd, path.encode(), flags | os.O_CLOEXEC),
                       "open_tree", path)


def move_mount_fds(from_fd: int, to_fd: int) -> None:
    """Attaches the mount `from_fd` on top of what `to_fd` refers to, without any path lookup."""
    _check(lib.pyc_move_mount(from_fd, b"", to_fd, b"",
                              MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH), "move_mount")


def fsopen(fs_name: str) -> int:
    return _check(lib.pyc_fsopen(fs_name.encode(), FSOPEN_CLOEXEC), f"fsopen {fs_name}")


def fsconfig(fd: int, cmd: int, key: str | None = None, value: str | None = None) -> None:
    _check(lib.pyc_fsconfig(fd, cmd, key.encode() if key is not None else ffi.NULL,
                            value.encode() if value is not None else ffi.NULL, 0),
           f"fsconfig {key or 'create'}")


def fsmount(fd: int, attr_flags: int) -> int:
    return _check(lib.pyc_fsmount(fd, FSMOUNT_CLOEXEC, attr_flags), "fsmount")


def mount_setattr_fd(fd: int, attr_set: int, attr_clr: int = 0, recursive: bool = False) -> None:
    flags = AT_EMPTY_PATH | (AT_RECURSIVE if recursive else 0)
    _check(lib.pyc_mount_setattr(fd, b"", flags, attr_set, attr_clr, 0), "mount_setattr")


def fstatfs_type(fd: int) -> int:
    """The filesystem's magic number (statfs f_type)."""
    return _check(lib.pyc_fstatfs_type(fd), "fstatfs")


def mount_id(fd: int) -> int:
    """The id of the mount the file behind `fd` is reached through (statx STATX_MNT_ID)."""
    out = ffi.new("uint64_t *")
    _check(lib.pyc_mount_id(fd, out), "statx")
    return out[0]
