"""A negative metadata.generation sent on create, as kube-apiserver 1.35 answers it: 422 for
a kind whose strategy does not track generation (ConfigMap, Service, Namespace), created with
generation 1 for one that does (Pod, Deployment: their strategy sets it before validation). The
table was read from the real kube-apiserver (../shared/refbin); the slow test reads it again and
compares."""
from __future__ import annotations

import pytest

from kubeapi import kubeconfig
from kubeapi.restclient import ApiClient
from kubeapi.status import ApiError
from testlib.kube_reference import kube_admin_client

INVALID = "metadata.generation: Invalid value: -3: must be greater than or equal to 0"
PODS = {"containers": [{"name": "c", "image": "busybox"}]}

# kind: (the collection's path under the namespace, or absolute; the object)
OBJECTS = {
    "ConfigMap": ("api/v1/namespaces/{ns}/configmaps", {"data": {"a": "b"}}),
    "Service": ("api/v1/namespaces/{ns}/services", {"spec": {"ports": [{"port": 80}]}}),
    "Namespace": ("api/v1/namespaces", {}),
    "Pod": ("api/v1/namespaces/{ns}/pods", {"spec": PODS}),
    "Deployment": ("apis/apps/v1/namespaces/{ns}/deployments", {"spec": {
        "selector": {"matchLabels": {"a": "g"}},
        "template": {"metadata": {"labels": {"a": "g"}}, "spec": PODS}}}),
}
# kind: (status code, the 422's message or the generation created)
EXPECTED = {
    "ConfigMap": (422, f'ConfigMap "neg-gen" is invalid: {INVALID}'),
    "Service": (422, f'Service "neg-gen" is invalid: {INVALID}'),
    "Namespace": (422, f'Namespace "neg-gen-ns" is invalid: {INVALID}'),
    "Pod": (201, 1),
    "Deployment": (201, 1),
}


def answers(client: ApiClient, namespace: str) -> dict[str, tuple[int, object]]:
    seen = {}
    for kind, (path, rest) in OBJECTS.items():
        name = "neg-gen-ns" if kind == "Namespace" else "neg-gen"
        body = {"apiVersion": "apps/v1" if kind == "Deployment" else "v1", "kind": kind,
                "metadata": {"name": name, "generation": -3}, **rest}
        try:
            created = client.create("/" + path.format(ns=namespace), body)
        except ApiError as e:
            seen[kind] = (e.code, e.message)
        else:
            seen[kind] = (201, created["metadata"].get("generation"))
    return seen


def test_pyapiserver_answers_a_negative_generation_as_kube(server, namespace):
    client = ApiClient(kubeconfig.load(server.kubeconfig), "negative-generation-test")
    try:
        assert answers(client, namespace) == EXPECTED
    finally:
        client.close()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_table_is_what_kube_apiserver_answers():
    with kube_admin_client("negative-generation-node", "negative-generation-test",
                           "generation", service_account=True) as client:
        assert answers(client, "generation") == EXPECTED
