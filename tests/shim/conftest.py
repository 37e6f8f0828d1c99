"""Shims on real busybox containers, with the real `pycontainer`, under private roots.

One shim root and one zygote per test session (under a short /tmp path: unix socket paths are
short); every test gets its own IDs and cleans up what it started even when it fails: shims
shut down, or killed by PID; containers deleted through the runtime; the zygote killed by PID at
the end of the session.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile

import pytest

from shim_testlib import REPO, Roots, Shims


@pytest.fixture(scope="session")
def roots() -> Roots:
    top = tempfile.mkdtemp(prefix="pcs", dir="/tmp")
    r = Roots(top)
    yield r
    for pid in r.zygote_pids():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if r.shim_root.encode() in f.read():
                    os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="session")
def busybox_rootfs(roots: Roots) -> str:
    """One read-only busybox root filesystem shared by the bundles of a session."""
    path = os.path.join(roots.top, "rootfs")
    subprocess.run([os.path.join(REPO, "scripts", "busybox-rootfs.sh"), path], check=True)
    return path


@pytest.fixture
def shims(roots: Roots, busybox_rootfs: str, tmp_path: os.PathLike) -> Shims:
    s = Shims(roots, busybox_rootfs, str(tmp_path))
    yield s
    s.cleanup()


