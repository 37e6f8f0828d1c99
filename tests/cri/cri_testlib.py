"""Helpers of the pycontainer-cri tests (the daemon itself is testlib.cri_daemon's): their poll and
the image's full name."""
from __future__ import annotations

from testlib import waiting

IMAGE_FULL = "docker.io/library/busybox:1.36"


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05, what="condition"):
    return waiting.wait_for(predicate, timeout, interval, what)
