"""The durable record of how a container ended: <state dir>/exit.json, written once by the shim
when it reaps the container's init, renamed into place so that a reader sees all of it or none.

    {"pid": 4242, "exit_code": 137, "signal": 9, "oom_killed": true,
     "started_at": "2016-10-06T00:17:09.669794202Z", "finished_at": "..."}

exit_code follows the shell and the CRI: 128+N when signal N killed the process.
"""
from __future__ import annotations

import json
import os

from shim.layout import EXIT


def code_and_signal(wait_status: int) -> tuple[int, int]:
    """(exit code, signal) from a waitpid status; the code is 128+N when signal N killed it."""
    if os.WIFSIGNALED(wait_status):
        sig = os.WTERMSIG(wait_status)
        return 128 + sig, sig
    return os.WEXITSTATUS(wait_status), 0


def record(pid: int, wait_status: int, oom_killed: bool, started_at: str,
           finished_at: str) -> dict:
    code, sig = code_and_signal(wait_status)
    return {"pid": pid, "exit_code": code, "signal": sig, "oom_killed": oom_killed,
            "started_at": started_at, "finished_at": finished_at}


def write(state_dir: str, exit_record: dict) -> None:
    path = os.path.join(state_dir, EXIT)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, json.dumps(exit_record).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def read(state_dir: str) -> dict | None:
    """The record, or None while the container has not exited (or was never started here)."""
    try:
        with open(os.path.join(state_dir, EXIT), "rb") as f:
            return json.loads(f.read())
    except FileNotFoundError:
        return None
