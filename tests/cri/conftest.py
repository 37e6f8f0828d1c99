"""Fixtures of the CRI daemon's tests (tests/cri): an image store holding busybox:1.36 and real
pycontainer-cri processes. Names are prefixed cri_ so that they never clash with
tests/kubelet's fixtures."""
from __future__ import annotations

import pytest

from testlib.cri_daemon import CriDaemon
from testlib.images import image_store


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
