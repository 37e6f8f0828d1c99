"""Fixtures of the cluster tests: one cluster per module (the real control plane of refbin and
three pykubelet nodes in namespaces of their own), sharing the kubelet tests' busybox image."""
from __future__ import annotations

import pytest

from cluster_testlib import Cluster
from testlib.images import image_store

NODES = ("node-a", "node-b", "node-c")


@pytest.fixture(scope="session")
def image_root(tmp_path_factory) -> str:
    with image_store(str(tmp_path_factory.mktemp("cluster-images"))) as store_root:
        yield store_root


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
