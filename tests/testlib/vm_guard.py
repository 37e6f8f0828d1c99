"""VMs that die with the test process that started them, even when it is SIGKILLed.

A PR_SET_PDEATHSIG on the process a test starts does not reach QEMU under vng: QEMU runs four
processes down (vng, sh, virtme-run, its fork), and the signal is not inherited across fork. Set
through preexec_fn, it would also be unsafe (the background stages start VMs from a thread) and
fire when the starting thread ends, not the process. So every VM starts under a guard: a small
process leading a session of its own, the VM launcher's parent, that waits on both the launcher
and the test process (pidfds) and, when the test process is gone first, SIGKILLs its whole
process group, QEMU and itself included.

Run as a script: vm_guard.py TEST_PID COMMAND...
"""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys


def start(args: list[str], **popen: object) -> subprocess.Popen:
    """Popen(args) under a guard, in a new session whose group a timeout can kill whole:
    the returned process is the guard, its exit status the VM launcher's."""
    return subprocess.Popen([sys.executable, "-I", os.path.abspath(__file__), str(os.getpid()),
                             *args], start_new_session=True, **popen)


def _guard(test_pid: int, args: list[str]) -> int:
    try:
        test = os.pidfd_open(test_pid)
    except ProcessLookupError:
        return 1
    if os.getppid() != test_pid:
        return 1  # the test process died and a new one took its PID before the pidfd
    vm = subprocess.Popen(args)
    ready, _, _ = select.select([test, os.pidfd_open(vm.pid)], [], [])
    if test in ready and vm.poll() is None:
        os.killpg(0, signal.SIGKILL)
    status = vm.wait()
    if status < 0:  # the launcher's signal, so that the caller's returncode is as without us
        signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
    return status


if __name__ == "__main__":
    sys.exit(_guard(int(sys.argv[1]), sys.argv[2:]))
