"""The host's block devices as the cgroup tests need them."""
from __future__ import annotations

import os

import pytest


def whole_disk() -> tuple[int, int]:
    """(major, minor) of a real disk of this machine (not a loop or zram device): throttling
    takes whole disks."""
    for name in sorted(os.listdir("/sys/block")):
        if os.path.exists(f"/sys/block/{name}/device"):
            with open(f"/sys/block/{name}/dev") as f:
                major, minor = f.read().split(":")
            return int(major), int(minor)
    pytest.fail("no block device with hardware behind it in /sys/block")
