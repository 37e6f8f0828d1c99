"""Fixtures of the CRI daemon's tests (tests/cri): an image store holding busybox:1.36 and real
pycontainer-cri processes. Names are prefixed cri_ so that they never clash with
tests/kubelet's fixtures."""
from __future__ import annotations

import os
import sys

import pytest

from cri_testlib import CriDaemon
from testlib.images import image_store

KUBELET_TESTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             "kubelet")
if KUBELET_TESTS not in sys.path:   # control_plane_testlib's kubeconfigs and BIN
    sys.path.insert(0, KUBELET_TESTS)


@pytest.fixture(scope="session")
def cri_image_root(tmp_path_factory) -> str:
    with image_store(str(tmp_path_factory.mktemp("cri-images"))) as store_root:
        yield store_root


@pytest.fixture(scope="module")
def cri_daemon(cri_image_root) -> CriDaemon:
    """A pycontainer-cri shared by a module's tests (each cleans its own pods)."""
    daemon = CriDaemon(cri_image_root, ("--insecure-registry", "127.0.0.1"))
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.cleanup()
