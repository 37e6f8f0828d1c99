"""A metadata.generation that a client sends with a Service, as kube-apiserver 1.35 answers it:
kept on create (a Service's strategy does not track generation, so nothing resets it, as with a
ConfigMap) and on a server-side apply that creates, and on every update the stored one stays
(PUT, merge patch, /status), whatever the update sends. The table was read from the real
kube-apiserver (../shared/refbin); the slow test reads it again and compares."""
from __future__ import annotations

import pytest

from kubeapi import kubeconfig
from kubeapi.restclient import ApiClient
from testlib.kube_reference import kube_admin_client

# (step, the generation read back after it), as kube-apiserver 1.35 answered.
EXPECTED = [("create with 5", 5), ("PUT with 9", 5), ("merge patch with 11 and a new port", 5),
            ("PUT /status with 20", 5), ("server-side apply creating with 7", 7)]


def generations(client: ApiClient, namespace: str) -> list[tuple[str, int | None]]:
    base = f"/api/v1/namespaces/{namespace}/services"
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "gen", "generation": 5},
               "spec": {"ports": [{"port": 80}]}}
    seen = []

    def read(step: str, name: str = "gen") -> None:
        seen.append((step, client.get(f"{base}/{name}")["metadata"].get("generation")))

    client.create(base, service)
    read("create with 5")
    stored = client.get(f"{base}/gen")
    stored["metadata"]["generation"] = 9
    client.request("PUT", f"{base}/gen", stored)
    read("PUT with 9")
    client.patch(f"{base}/gen", {"metadata": {"generation": 11},
                                 "spec": {"ports": [{"port": 81}]}})
    read("merge patch with 11 and a new port")
    stored = client.get(f"{base}/gen")
    stored["metadata"]["generation"] = 20
    client.request("PUT", f"{base}/gen/status", stored)
    read("PUT /status with 20")
    client.request("PATCH", f"{base}/applied", {**service, "metadata": {
        "name": "applied", "generation": 7}}, query={"fieldManager": "test"},
        content_type="application/apply-patch+yaml")
    read("server-side apply creating with 7", "applied")
    return seen


def test_pyapiserver_keeps_a_services_generation_as_kube(server, namespace):
    client = ApiClient(kubeconfig.load(server.kubeconfig), "service-generation-test")
    try:
        assert generations(client, namespace) == EXPECTED
    finally:
        client.close()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_table_is_what_kube_apiserver_answers():
    with kube_admin_client("service-generation-node", "service-generation-test",
                           "generation") as client:
        assert generations(client, "generation") == EXPECTED
