"""Fixtures of the DNS tests: the real pyapiserver (as tests/apiserver's fixtures start it), our
REST client, a namespace per test, a fake upstream resolver on loopback and pykube-dns itself
(a process on 127.0.0.1, kernel-chosen port) pointed at both."""
from __future__ import annotations

import pytest

from dns_testlib import DnsProcess
from testlib.dns_upstream import FakeUpstream
from testlib.pyapiserver import fresh_namespace, rest_client, running_server


SERVICE_RANGE = "198.19.240.0/20"   # ClusterIPs inside the tests' 198.18.0.0/15


@pytest.fixture(scope="session")
def server():
    with running_server(["--service-cluster-ip-range", SERVICE_RANGE]) as s:
        yield s


@pytest.fixture(scope="session")
def client(server):
    with rest_client(server, "dns-tests") as c:
        yield c


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
    with fresh_namespace(client, "d-") as name:
        yield name
