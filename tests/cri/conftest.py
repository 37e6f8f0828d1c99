"""Fixtures of the CRI daemon's tests (tests/cri): an image store holding busybox:1.36 and real
pycontainer-cri processes. Names are prefixed cri_ so that they never clash with
tests/kubelet's fixtures."""
from __future__ import annotations

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
for extra in (TESTS, os.path.join(TESTS, "overlay"), os.path.join(TESTS, "kubelet")):
    if extra not in sys.path:
        sys.path.insert(0, extra)

from cri_testlib import CriDaemon  # noqa: E402


@pytest.fixture(scope="session")
def cri_image_root(tmp_path_factory) -> str:
    from kubelet_testlib import make_image_store
    from overlay import snapshots
    from overlay.store import Store

    store_root = make_image_store(str(tmp_path_factory.mktemp("cri-images")))
    yield store_root
    store = Store(store_root)
    for key in snapshots.list_keys(store):
        snapshots.remove(store, key)


@pytest.fixture(scope="module")
def cri_daemon(cri_image_root) -> CriDaemon:
    """A pycontainer-cri shared by a module's tests (each cleans its own pods)."""
    daemon = CriDaemon(cri_image_root, ("--insecure-registry", "127.0.0.1"))
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.cleanup()
