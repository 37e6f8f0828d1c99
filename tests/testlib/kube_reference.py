"""The real kube-apiserver (refbin, on etcd) for tests that record what it answers and hold
pyapiserver to the same: a plane of its own per test, an admin client on a fresh namespace."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from kubeapi import kubeconfig
from kubeapi.restclient import ApiClient
from testlib.control_plane import ControlPlane


@contextmanager
def kube_apiserver(node: str) -> Iterator:
    """A started ControlPlane, cleaned up at the end."""
    cp = ControlPlane(node)
    try:
        cp.start()
        yield cp
    finally:
        cp.cleanup()


@contextmanager
def kube_admin_client(node: str, agent: str, namespace: str,
                      service_account: bool = False) -> Iterator[ApiClient]:
    """An admin client of a real kube-apiserver with `namespace` made; its default
    ServiceAccount too when asked (no controller manager runs here to make it)."""
    with kube_apiserver(node) as cp:
        client = ApiClient(kubeconfig.load(cp.admin_kubeconfig), agent)
        try:
            client.create("/api/v1/namespaces", {"metadata": {"name": namespace}})
            if service_account:
                client.create(f"/api/v1/namespaces/{namespace}/serviceaccounts",
                              {"metadata": {"name": "default"}})
            yield client
        finally:
            client.close()
