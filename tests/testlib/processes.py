"""Processes the tests start and must end: a stop that cannot hang, the PIDs whose command
line names a path of a test's own (shims outlive their parent), a free loopback port."""
from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
from collections.abc import Iterator


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


# Ports for the servers tests start. A port the kernel picks (bind to 0) comes from
# ip_local_port_range, where any connection on the machine may take it as its source port
# between the pick and the server's bind: CI failed so. These lie below that range (32768 up),
# above the hostPorts tests map (18xxx, 20xxx, 21xxx) and below the NodePorts (30000 up).
TEST_PORTS = range(22000, 30000)


def _worker_ports() -> Iterator[int]:
    """Every Nth port for xdist worker N, so two workers never pick the same one; from a start
    of the process's own, so a rerun does not meet its predecessor's ports in TIME_WAIT."""
    index = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:])
    mine = TEST_PORTS[index::int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))]
    start = random.randrange(len(mine))
    while True:
        yield from mine[start:]
        yield from mine[:start]


_PORTS = _worker_ports()


def free_port() -> int:
    """A TCP port nothing is bound to, on any address, and that this process has not handed
    out lately."""
    while True:
        port = next(_PORTS)
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
