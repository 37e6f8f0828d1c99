"""The zygote's rehearsal of a shim (shim.rehearsal) leaves the zygote as it found it: no
descriptor, signal handler, wakeup fd, subreaper flag or process name of the rehearsed shim."""
from __future__ import annotations

import subprocess
import sys

from shim_testlib import REPO

_PROGRAM = r"""
import ctypes, os, signal
from shim import rehearsal

def snapshot():
    flag = ctypes.c_int(-1)
    ctypes.CDLL(None, use_errno=True).prctl(37, ctypes.byref(flag), 0, 0, 0)  # GET_CHILD_SUBREAPER
    with open("/proc/self/comm") as f:
        comm = f.read()
    fds = sorted(os.listdir("/proc/self/fd"))
    return fds, comm, signal.getsignal(signal.SIGCHLD), signal.set_wakeup_fd(-1), flag.value

before = snapshot()
rehearsal.rehearse()
after = snapshot()
assert before == after, (before, after)
print("same")
"""


def test_the_rehearsal_leaves_nothing_behind():
    done = subprocess.run([sys.executable, "-c", _PROGRAM], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "same"
