"""Processes the tests start and must end: a stop that cannot hang, the PIDs whose command
line names a path of a test's own (shims outlive their parent), a free loopback port."""
from __future__ import annotations

import os
import signal
import socket
import subprocess


def stop(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, wait: float = 30) -> None:
    """sig to a process still running, SIGKILL if it is not gone within `wait` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def pids_naming(needle: str) -> list[int]:
    """PIDs whose command line contains needle."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if needle.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
