"""Fixtures of the cluster tests: one cluster per module (the real control plane of refbin and
three pykubelet nodes in namespaces of their own), sharing the kubelet tests' busybox image."""
from __future__ import annotations

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
for extra in (TESTS, os.path.join(TESTS, "kubelet"), os.path.join(TESTS, "apiserver"),
              os.path.join(TESTS, "overlay")):
    if extra not in sys.path:
        sys.path.insert(0, extra)

from cluster_testlib import Cluster  # noqa: E402
from kubelet_testlib import make_image_store  # noqa: E402

NODES = ("node-a", "node-b", "node-c")


@pytest.fixture(scope="session")
def image_root(tmp_path_factory) -> str:
    from overlay import snapshots
    from overlay.store import Store

    store_root = make_image_store(str(tmp_path_factory.mktemp("cluster-images")))
    yield store_root
    store = Store(store_root)
    for key in snapshots.list_keys(store):
        snapshots.remove(store, key)


@pytest.fixture(scope="module")
def cluster(image_root) -> Cluster:
    """The control plane and three Ready nodes with their pod networks."""
    c = Cluster(image_root)
    try:
        c.start(list(NODES))
        for name in NODES:
            c.add_node(name)
        for node in c.nodes:
            c.wait_pod_cidr(node)
        yield c
    finally:
        c.cleanup()
