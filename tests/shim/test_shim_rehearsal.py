"""The zygote's rehearsal of a shim (shim.rehearsal) leaves the zygote as it found it: no
descriptor, signal handler, wakeup fd, subreaper flag, process name, child or directory of the
rehearsed shim; and its exec ran."""
from __future__ import annotations

import subprocess
import sys

from shim_testlib import REPO

_PROGRAM = r"""
import ctypes, os, signal, sys
from shim import rehearsal

def snapshot():
    flag = ctypes.c_int(-1)
    ctypes.CDLL(None, use_errno=True).prctl(37, ctypes.byref(flag), 0, 0, 0)  # GET_CHILD_SUBREAPER
    with open("/proc/self/comm") as f:
        comm = f.read()
    fds = sorted(os.listdir("/proc/self/fd"))
    with open(f"/proc/self/task/{os.getpid()}/children") as f:
        children = f.read()
    dirs = os.listdir(sys.argv[1])
    return (fds, comm, signal.getsignal(signal.SIGCHLD), signal.set_wakeup_fd(-1), flag.value,
            children, dirs)

before = snapshot()
answers = rehearsal.rehearse(sys.argv[1])
after = snapshot()
assert before == after, (before, after)
execs = [a for a in answers if "exit_code" in a]
assert execs == [{"ok": True, "exit_code": 0, "signal": 0, "timed_out": False,
                  "stdout": "a line\n", "stderr": "", "truncated": False}], answers
print("same")
"""


def test_the_rehearsal_leaves_nothing_behind(tmp_path):
    done = subprocess.run([sys.executable, "-c", _PROGRAM, str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "same"
