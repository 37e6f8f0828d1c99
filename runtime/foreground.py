"""`run` and `exec` in the foreground: the runtime stays the process's parent, forwards the
signals it gets, relays the process's terminal when it holds the pty master, and returns the
process's exit status as a shell would (128+N when killed by signal N)."""
from __future__ import annotations

import os

# _signal: the C module `signal` wraps; `signal` itself builds enums at import (3-4 ms).
import _signal as signal

# Not forwarded: the ones we need ourselves or that cannot be caught, and the synchronous faults
# that concern this process only.
_KEEP = {signal.SIGCHLD, signal.SIGKILL, signal.SIGSTOP, signal.SIGWINCH, signal.SIGSEGV,
         signal.SIGBUS, signal.SIGFPE, signal.SIGILL}


def become_subreaper() -> None:
    """Orphans of the container (when it has no PID namespace of its own) come to us to reap."""
    import _prctl

    _prctl.prctl(_prctl.PR_SET_CHILD_SUBREAPER, 1)


def wait(pid: int, master: int = -1) -> int:
    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for sig in range(1, signal.NSIG):
        if sig not in _KEEP:
            try:
                signal.signal(sig, forward)
            except (OSError, ValueError):
                pass
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
