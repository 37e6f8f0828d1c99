"""Namespace types as the OCI spec names them, their clone(2) flags and their /proc/PID/ns files."""
from __future__ import annotations

import os

from linux import constants as lx
from linux.syscalls import Syscalls
from runtime.errors import PycontainerError

CLONE_FLAGS = {"mount": lx.CLONE_NEWNS, "uts": lx.CLONE_NEWUTS, "ipc": lx.CLONE_NEWIPC,
               "user": lx.CLONE_NEWUSER, "pid": lx.CLONE_NEWPID, "network": lx.CLONE_NEWNET,
               "cgroup": lx.CLONE_NEWCGROUP}
PROC_FILES = {"user": "user", "ipc": "ipc", "uts": "uts", "network": "net", "cgroup": "cgroup",
              "mount": "mnt", "pid": "pid"}
# setns order: the user namespace first (it grants the rights for the others), the mount
# namespace last (it changes what the other paths mean).
JOIN_ORDER = ("user", "ipc", "uts", "network", "cgroup", "mount")


def enter_pid_namespace_for_children(syscalls: Syscalls, path: str | None,
                                     field: str = "linux.namespaces") -> int:
    """setns(CLONE_NEWPID) moves only the children made afterwards, so that the next child is
    born in the namespace at `path`. Returns our own namespace to go back to after the fork
    (-1 when `path` is empty), which setns allows since it is still our active one; only the
    parent may go back: the child's own PID namespace can no longer change."""
    if not path:
        return -1
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            syscalls.setns(target, lx.CLONE_NEWPID)
        finally:
            os.close(target)
    except OSError as e:
        os.close(own)
        raise PycontainerError(f"{field}: join pid {path}: {e.strerror}") from None
    return own


def leave_pid_namespace_for_children(syscalls: Syscalls, own: int) -> None:
    if own >= 0:
        try:
            syscalls.setns(own, lx.CLONE_NEWPID)
        finally:
            os.close(own)


def clone_child(syscalls: Syscalls, flags: int, cgroup_fd: int | None, own_pid_ns: int) -> int:
    """The container's first process (the init, or an exec'd one): clone() with `flags`, born
    in the cgroup `cgroup_fd` where one is given; a plain fork when neither asks for anything.
    In the parent, goes back to its own PID namespace (see enter_pid_namespace_for_children;
    the child stays in the joined one for good) and closes `cgroup_fd`. 0 in the child."""
    pid = -1
    try:
        if cgroup_fd is not None:
            pid = syscalls.clone_into(flags, cgroup_fd)
        elif flags:
            pid = syscalls.clone(flags)
        else:
            pid = os.fork()
    finally:
        if pid != 0:
            leave_pid_namespace_for_children(syscalls, own_pid_ns)
            if cgroup_fd is not None:
                os.close(cgroup_fd)
    return pid
