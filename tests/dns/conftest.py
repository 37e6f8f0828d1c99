"""Fixtures of the DNS tests: the real pyapiserver (as tests/apiserver's fixtures start it), our
REST client, a namespace per test, a fake upstream resolver on loopback and pykube-dns itself
(a process on 127.0.0.1, kernel-chosen port) pointed at both."""
from __future__ import annotations

import os
import sys
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
for extra in (HERE, TESTS, os.path.join(TESTS, "apiserver")):
    if extra not in sys.path:
        sys.path.insert(0, extra)

from apiserver_testlib import start_server, stop_server  # noqa: E402
from dns_testlib import DnsProcess, FakeUpstream  # noqa: E402

from kubeapi import kubeconfig  # noqa: E402
from kubeapi.restclient import ApiClient  # noqa: E402


SERVICE_RANGE = "198.19.240.0/20"   # ClusterIPs inside the tests' 198.18.0.0/15


@pytest.fixture(scope="session")
def server():
    s = start_server(["--service-cluster-ip-range", SERVICE_RANGE])
    yield s
    stop_server(s)


@pytest.fixture(scope="session")
def client(server):
    c = ApiClient(kubeconfig.load(server.kubeconfig), "dns-tests")
    yield c
    c.close()


@pytest.fixture(scope="session")
def upstream():
    u = FakeUpstream()
    yield u
    u.close()


@pytest.fixture(scope="session")
def dns_server(server, upstream):
    d = DnsProcess(server.kubeconfig, "--upstream", f"127.0.0.1:{upstream.port}")
    yield d
    d.stop()


@pytest.fixture
def namespace(client):
    """A fresh namespace per test, so that tests do not see each other's objects."""
    name = "d-" + uuid.uuid4().hex[:8]
    client.create("/api/v1/namespaces", {"metadata": {"name": name}})
    yield name
    try:
        client.delete(f"/api/v1/namespaces/{name}")
    except Exception:
        pass
