"""The sealed copy of runtime/exec_stub through which every container process is exec'd.

When the container's executable is a script whose interpreter is /proc/self/exe (CVE-2019-5736),
the kernel resolves that link in the process doing the execve. Were that the runtime itself, the
container would be running the host's Python interpreter, and could reopen it for writing through
/proc/PID/exe once it exits. So the runtime's last execve is of this stub, from a sealed memfd, and
the stub does the container's execve: /proc/self/exe then names an anonymous, unwritable copy of a
small static program, never a host file. A sealed copy of the stub (13 KiB: it has no C library)
costs 0.05 ms; re-executing the interpreter
from a read-only mount (runc's other way) would cost a whole interpreter start-up.
"""
from __future__ import annotations

import fcntl
import os

_STUB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "exec_stub")
_MFD_EXEC = 0x10  # Linux 6.3+: says the memfd is meant to be executed (else a kernel warning)
_SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE


def sealed_copy() -> int:
    """A close-on-exec memfd holding the stub, sealed against every change."""
    try:
        src = os.open(_STUB, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        from runtime.errors import PycontainerError

        raise PycontainerError(f"{_STUB} is missing: reinstall pycontainer "
                               "(scripts/install.sh builds it)") from None
    try:
        try:
            fd = os.memfd_create("pycontainer-exec", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING | _MFD_EXEC)
        except OSError:  # before Linux 6.3, MFD_EXEC is unknown: memfds were executable anyway
            fd = os.memfd_create("pycontainer-exec", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        size = os.fstat(src).st_size
        offset = 0
        while offset < size:
            offset += os.sendfile(fd, src, offset, size - offset)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
        return fd
    finally:
        os.close(src)


def execute(stub_fd: int, report_fd: int, path: str, args: list[str], env: dict[str, str]) -> None:
    """execve of `path` through the stub; a failure of that last execve is written to
    `report_fd` as a sync ERROR message (-1: to stderr). Returns only if the stub itself could
    not be executed (raises OSError)."""
    if report_fd >= 0:
        os.set_inheritable(report_fd, True)
    os.execve(stub_fd, [str(report_fd), path, *args], env)
