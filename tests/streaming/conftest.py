"""Fixtures: the test front (HTTPS, as the kubelet's port) with the cri.streaming protocols
behind it, a kubeconfig for the real kubectl, and a "pod" HTTP server on loopback."""
from __future__ import annotations

import socket

import pytest

from streaming_testlib import start, start_web


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    f = start(tmp_path_factory.mktemp("tls"))
    yield f
    f.close()


@pytest.fixture
def kubeconfig(front, tmp_path):
    return front.kubeconfig(tmp_path)


@pytest.fixture(scope="module")
def web():
    w = start_web()
    yield w
    w.close()


@pytest.fixture
def closed_port():
    """A loopback port nothing listens on (the kernel's pick, released at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
