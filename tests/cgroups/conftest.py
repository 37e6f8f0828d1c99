"""Fixtures for the cgroups tests: a unique cgroup removed even when the test fails, and Python
children that wait to be put into it before they run."""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
import uuid

import pytest

import cgroups
from cgroups import mode


def _hierarchy_dirs(path: str) -> list[str]:
    """Where a cgroup at path lives in every mounted hierarchy of this host."""
    h = mode.detect()
    roots = set(h.v1.values()) | ({h.unified} if h.unified else set())
    return sorted(root + path for root in roots)


@pytest.fixture
def hierarchy_dirs():
    """hierarchy_dirs(path) -> the cgroup's directory in every mounted hierarchy."""
    return _hierarchy_dirs


@pytest.fixture
def host_mode() -> str:
    if os.geteuid() != 0:
        pytest.skip("needs root: creates real cgroups")
    return cgroups.detect_mode()


@pytest.fixture
def cgroup(host_mode):
    """A fresh cgroup /pycontainer/test-<unique>, not created yet; destroyed afterwards."""
    cg = cgroups.open_cgroup(cgroups.resolve_path(None, f"test-{uuid.uuid4().hex[:12]}"))
    yield cg
    cg.destroy()
    left = [d for d in _hierarchy_dirs(cg.path) if os.path.exists(d)]
    assert not left, f"destroy left {left}"


class Child:
    """A Python child that waits for go() before running code, so it joins a cgroup first."""

    def __init__(self, code: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import sys\nsys.stdin.readline()\n" + code],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)  # its own process group: teardown kills its children too
        self.pid = self.proc.pid

    def go(self) -> None:
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def readline(self, timeout: float = 60) -> str:
        """The child's next line; fails naming the wait if none comes within timeout."""
        deadline = time.monotonic() + timeout
        line = b""
        # Byte by byte from the pipe itself: the buffered reader could hold data select can't see.
        while not line.endswith(b"\n"):
            left = max(deadline - time.monotonic(), 0)
            if not select.select([self.proc.stdout], [], [], left)[0]:
                pytest.fail(f"child {self.pid}: no line within {timeout:.0f} s (got {line!r})")
            byte = os.read(self.proc.stdout.fileno(), 1)
            if not byte:
                break  # it exited: the caller's assertion shows what it printed
            line += byte
        return line.decode().strip()

    def finish(self, timeout: float = 60) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out.decode(), err.decode()


@pytest.fixture
def spawn():
    """spawn(code) -> Child; every child (and its descendants) is killed and reaped at the end."""
    children: list[Child] = []

    def start(code: str) -> Child:
        child = Child(code)
        children.append(child)
        return child

    yield start
    for child in children:
        if child.proc.poll() is None:  # not reaped: its pid, and so its group, is still ours
            os.killpg(child.pid, signal.SIGKILL)
        child.proc.communicate(timeout=30)
