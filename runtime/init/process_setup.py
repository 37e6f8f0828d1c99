"""The last steps before execve, shared by the container's init and by `exec`: rlimits, the user
and its groups, capabilities, no_new_privs, the environment and the executable.

These run after pivot_root (or setns into the container's mount namespace), where the host's
Python library is out of sight: every module they need is imported up front, never lazily.
"""
from __future__ import annotations

import os
import resource

# _signal: the C module `signal` wraps; `signal` itself builds enums at import (3-4 ms).
import _signal as signal

from linux import constants as lx
from linux.syscalls import Syscalls
from runtime import capabilities, exec_stub, seccomp
from runtime.config import Process
from runtime.errors import PycontainerError

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ExecutableNotFound(PycontainerError):
    pass


def set_rlimits(process: Process) -> None:
    for kind, soft, hard in process.rlimits:
        resource.setrlimit(kind, (_rlim(soft), _rlim(hard)))


def _rlim(value: int) -> int:
    # The spec's "unlimited" is 2^64-1; Python's is RLIM_INFINITY (-1).
    return -1 if value >= 2**63 else value


def switch_user(syscalls: Syscalls, process: Process, setgroups_allowed: bool, warn) -> None:
    """Drops the bounding set, becomes the configured user keeping the permitted capabilities,
    then sets the exact capability sets."""
    caps = process.capabilities
    last = capabilities.last_cap() if caps is not None else 0
    if caps is not None:
        capabilities.drop_bounding(syscalls, caps.bounding, last)
    syscalls.prctl(lx.PR_SET_KEEPCAPS, 1)
    user = process.user
    if setgroups_allowed:
        os.setgroups(user.additional_gids)
    os.setresgid(user.gid, user.gid, user.gid)
    os.setresuid(user.uid, user.uid, user.uid)
    syscalls.prctl(lx.PR_SET_KEEPCAPS, 0)
    if caps is not None:
        capabilities.apply(syscalls, caps, warn, last)
    if user.umask is not None:
        os.umask(user.umask)
    if process.no_new_privileges:
        syscalls.prctl(lx.PR_SET_NO_NEW_PRIVS, 1)


def chdir(cwd: str) -> bool:
    """False when the directory is not reachable yet (root may need to chdir before the user
    switch, the user after it)."""
    try:
        os.chdir(cwd)
        return True
    except PermissionError:
        return False
    except OSError as e:
        raise PycontainerError(f"process.cwd: {cwd}: {e.strerror}") from None


def environment(process: Process) -> dict[str, str]:
    env = dict(entry.split("=", 1) for entry in process.env)
    if "HOME" not in env:
        env["HOME"] = _home_of(process.user.uid)
    return env


def _home_of(uid: int) -> str:
    """As runc: HOME from the container's /etc/passwd, "/" when the user has no entry."""
    try:
        with open("/etc/passwd") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    return fields[5] or "/"
    except OSError:
        pass
    return "/"


def find_executable(name: str, env: dict[str, str]) -> str:
    """args[0] resolved in the container's filesystem, as execvp would resolve it."""
    if "/" in name:
        candidates = [name]
    else:
        candidates = [os.path.join(d or ".", name) for d in env.get("PATH", DEFAULT_PATH).split(":")]
    for path in candidates:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if not (st.st_mode & 0o170000 == 0o100000):
            continue
        if st.st_mode & 0o111:
            return path
    where = name if "/" in name else f"{name!r} in $PATH"
    raise ExecutableNotFound(f"process.args[0]: executable {where} not found in the container")


def execute(syscalls: Syscalls, path: str, args: list[str], env: dict[str, str],
            seccomp_program: seccomp.Program | None, stub_fd: int, report_fd: int) -> None:
    """execve, through the sealed exec stub (runtime/exec_stub.py), with the signal
    dispositions a fresh process expects (Python ignores SIGPIPE and SIGXFSZ, and ignored
    signals survive exec); a seccomp program given here is loaded last. The stub reports a
    failure of its own execve on `report_fd` (-1: stderr)."""
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    if seccomp_program is not None:
        seccomp_program.load(syscalls)
    try:
        exec_stub.execute(stub_fd, report_fd, path, args, env)
    except OSError as e:
        raise PycontainerError(f"exec {path}: {e.strerror}") from None


def close_fds_except(first: int, keep: set[int]) -> None:
    """Closes every descriptor from `first` up but those in `keep`: whatever the runtime had
    open (a directory, a log, the caller's files) is gone before the container's cwd is looked
    up or anything of the container can run."""
    low = first
    for fd in sorted(k for k in keep if k >= first):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, _FD_MAX)


_FD_MAX = 0x7FFFFFFF  # close_range(2) takes the whole range in one call


def check_cwd_inside_root(cwd: str) -> None:
    """After chdir: the working directory must be reachable from the container's root; getcwd
    fails with ENOENT when it is not (a cwd reached through a leaked descriptor)."""
    try:
        where = os.getcwd()
    except FileNotFoundError:
        where = ""
    if not where.startswith("/"):
        raise PycontainerError(f"process.cwd: {cwd}: is outside the container's root filesystem")
