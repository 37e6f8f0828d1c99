"""`run` and `exec` in the foreground: the runtime stays the process's parent, forwards the
signals it gets, relays the process's terminal when it holds the pty master, and returns the
process's exit status as a shell would (128+N when killed by signal N)."""
from __future__ import annotations

import os

# _signal: the C module `signal` wraps; `signal` itself builds enums at import (3-4 ms).
import _signal as signal

from linux import constants as lx
from linux.syscalls import Syscalls

# Not forwarded: the ones we need ourselves or that cannot be caught, and the synchronous faults
# that concern this process only.
_KEEP = {signal.SIGCHLD, signal.SIGKILL, signal.SIGSTOP, signal.SIGWINCH, signal.SIGSEGV,
         signal.SIGBUS, signal.SIGFPE, signal.SIGILL}


def become_subreaper(syscalls: Syscalls) -> None:
    """Orphans of the container (when it has no PID namespace of its own) come to us to reap."""
    syscalls.prctl(lx.PR_SET_CHILD_SUBREAPER, 1)


class SignalRelay:
    """Forwards the signals this process gets to the container's process. Put in place before
    that process starts, as runc's handler is: a signal sent between start and wait must not
    end the runtime (the default action), so one that comes before the PID is known waits."""

    __slots__ = ("pid", "pending")

    def __init__(self) -> None:
        self.pid = 0
        self.pending: list[int] = []
        for sig in range(1, signal.NSIG):
            if sig not in _KEEP:
                try:
                    signal.signal(sig, self._relay)
                except (OSError, ValueError):
                    pass

    def _relay(self, signum: int, _frame: object) -> None:
        if not self.pid:
            self.pending.append(signum)
            return
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass

    def to(self, pid: int) -> None:
        self.pid = pid
        while self.pending:
            self._relay(self.pending.pop(0), None)


def wait(pid: int, relay: SignalRelay, master: int = -1) -> int:
    relay.to(pid)
    session = None
    if master >= 0:
        from runtime.console import TerminalSession

        session = TerminalSession(master)
    try:
        while True:
            reaped, status = os.waitpid(-1, 0)
            if reaped == pid:
                return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) \
                    else 128 + os.WTERMSIG(status)
    finally:
        if session is not None:
            session.close()
