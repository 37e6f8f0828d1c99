"""The main job's pod half, as README's first command runs it (scripts/demo-pod.sh): the pod
runs and says so through kubectl, and the script leaves nothing behind."""
from __future__ import annotations

import glob
import os
import subprocess

import pytest

pytestmark = pytest.mark.root

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "scripts", "demo-pod.sh")


def leftovers() -> list[str]:
    found = glob.glob("/tmp/pyk-demo.*") + glob.glob("/sys/fs/cgroup/*/pycontainer/demo-*")
    found += [name for name in os.listdir("/sys/class/net") if name.startswith("pycdemo")]
    with open("/proc/self/mountinfo") as f:
        found += [line.split()[4] for line in f if "/tmp/pyk-demo." in line.split()[4]]
    return found


def test_demo_pod_runs_and_leaves_nothing():
    assert leftovers() == []
    result = subprocess.run([SCRIPT], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "hello from pod hello, address 198.19.255." in out
    assert "memory limit 67108864" in out
    assert "Completed" in out and "pycontainer-demo   Ready" in out
    assert 'Container image "busybox:static" already present on machine' in out
    assert leftovers() == []
