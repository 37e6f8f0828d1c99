"""The kubelet's cache of its pods' ConfigMaps and Secrets on the real API server: one list and
one watch per referenced object instead of a GET per read, updates arriving through the watch,
the watch held while a pod references the object and stopped after the last one goes, stopped
for good once the object reads as immutable (which then outlives its deletion), stopped when
idle and started again by the next read. No root."""
from __future__ import annotations

import pytest

from kubeapi import kubeconfig
from kubeapi.restclient import ApiClient
from kubelet.config_objects import ConfigObjects, ObjectMissing, ObjectUnavailable
from kubelet.object_cache import CacheNotReady, ObjectCache, references
from kubelet.pods import Pod
from kubelet_testlib import wait_for


class RecordingClient(ApiClient):
    """Our REST client, noting each request's method and path (watches go around it)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.requests: list[tuple[str, str]] = []

    def request(self, method: str, path: str, *args, **kwargs):
        self.requests.append((method, path))
        return super().request(method, path, *args, **kwargs)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client(api_server):
    c = RecordingClient(kubeconfig.load(api_server.kubeconfig), "object-cache-tests")
    yield c
    c.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(client, clock):
    c = ObjectCache(client, max_idle=300, clock=clock)
    yield c
    c.stop()


def pod(namespace: str, uid: str, config_maps: list[str] = (), secrets: list[str] = ()) -> Pod:
    env = [{"name": f"C{i}", "valueFrom": {"configMapKeyRef": {"name": n, "key": "k"}}}
           for i, n in enumerate(config_maps)]
    env += [{"name": f"S{i}", "valueFrom": {"secretKeyRef": {"name": n, "key": "k"}}}
            for i, n in enumerate(secrets)]
    return Pod({"metadata": {"name": uid, "namespace": namespace, "uid": uid},
                "spec": {"containers": [{"name": "c", "image": "i", "env": env}]}})


def config_map(api, namespace: str, name: str, value: str, **extra) -> None:
    api.client.create(f"/api/v1/namespaces/{namespace}/configmaps",
                      {"metadata": {"name": name}, "data": {"k": value}, **extra})


def test_references_cover_volumes_projections_env_and_env_from():
    p = Pod({"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": {
        "volumes": [{"name": "a", "configMap": {"name": "vol-cm"}},
                    {"name": "b", "secret": {"secretName": "vol-secret"}},
                    {"name": "c", "projected": {"sources": [
                        {"configMap": {"name": "kube-root-ca.crt"}},
                        {"secret": {"name": "proj-secret"}},
                        {"serviceAccountToken": {"path": "token"}}]}},
                    {"name": "d", "emptyDir": {}}],
        "initContainers": [{"name": "i", "envFrom": [{"configMapRef": {"name": "init-cm"}}]}],
        "containers": [{"name": "c", "envFrom": [{"secretRef": {"name": "from-secret"}}],
                        "env": [{"name": "X", "value": "1"},
                                {"name": "Y", "valueFrom": {"fieldRef": {
                                    "fieldPath": "metadata.name"}}}]}],
        "ephemeralContainers": [{"name": "e", "env": [{"name": "Z", "valueFrom": {
            "secretKeyRef": {"name": "debug-secret", "key": "k"}}}]}]}})
    assert references(p) == {
        ("configmaps", "vol-cm"), ("secrets", "vol-secret"), ("configmaps", "kube-root-ca.crt"),
        ("secrets", "proj-secret"), ("configmaps", "init-cm"), ("secrets", "from-secret"),
        ("secrets", "debug-secret")}


def test_reads_come_from_one_watch_and_see_updates(api, namespace, client, cache):
    config_map(api, namespace, "conf", "v1")
    cache.register(pod(namespace, "p1", ["conf", "absent"]))
    objects = ConfigObjects(client, cache=cache)
    for _ in range(20):
        assert objects.config_map(namespace, "conf") == {"k": b"v1"}
    with pytest.raises(ObjectMissing, match='^configmaps "absent" not found$'):
        objects.config_map(namespace, "absent")
    api.client.patch(f"/api/v1/namespaces/{namespace}/configmaps/conf", {"data": {"k": "v2"}})
    wait_for(lambda: objects.config_map(namespace, "conf") == {"k": b"v2"}, timeout=10,
             what="the update through the watch")
    config_map(api, namespace, "absent", "late")
    wait_for(lambda: cache.get("configmaps", namespace, "absent") is not None, timeout=10,
             what="a created object through the watch")
    # One list of each object, with its name as field selector; no GET of the object itself.
    paths = [p for m, p in client.requests if m == "GET"]
    assert paths == [f"/api/v1/namespaces/{namespace}/configmaps"] * 2, client.requests


def test_the_watch_lasts_while_a_pod_references_the_object(api, namespace, cache):
    config_map(api, namespace, "shared", "x")
    key = ("configmaps", namespace, "shared")
    cache.register(pod(namespace, "a", ["shared"]))
    cache.register(pod(namespace, "a", ["shared"]))  # an update of the same pod counts once
    cache.register(pod(namespace, "b", ["shared"]))
    assert cache.watching() == {key}
    cache.unregister("a")
    assert cache.watching() == {key}
    assert cache.get(*key)["data"] == {"k": "x"}
    cache.unregister("b")
    assert cache.watching() == set()
    with pytest.raises(CacheNotReady, match=f'^object "{namespace}"/"shared" not registered$'):
        cache.get(*key)
    # A pod that gains a reference (an ephemeral container's env) gains its watch.
    cache.register(pod(namespace, "c", ["shared"], secrets=["token"]))
    assert cache.watching() == {key, ("secrets", namespace, "token")}
    cache.register(pod(namespace, "c", ["shared"]))
    assert cache.watching() == {key}


def test_an_immutable_object_is_kept_without_a_watch(api, namespace, client, cache):
    config_map(api, namespace, "frozen", "ice", immutable=True)
    config_map(api, namespace, "fluid", "water")
    cache.register(pod(namespace, "p", ["frozen", "fluid"]))
    objects = ConfigObjects(client, cache=cache)
    assert objects.config_map(namespace, "frozen") == {"k": b"ice"}
    assert objects.config_map(namespace, "fluid") == {"k": b"water"}
    assert cache.watching() == {("configmaps", namespace, "fluid")}
    for name in ("frozen", "fluid"):
        api.client.delete(f"/api/v1/namespaces/{namespace}/configmaps/{name}")
    wait_for(lambda: cache.get("configmaps", namespace, "fluid") is None, timeout=10,
             what="the deletion through the watch")
    assert objects.config_map(namespace, "frozen") == {"k": b"ice"}


def test_an_idle_watch_stops_and_the_next_read_starts_it(api, namespace, client, clock,
                                                         cache):
    config_map(api, namespace, "env-only", "old")
    key = ("configmaps", namespace, "env-only")
    cache.register(pod(namespace, "p", ["env-only"]))
    assert cache.get(*key)["data"] == {"k": "old"}
    clock.now += 299
    cache.stop_idle()
    assert cache.watching() == {key}
    clock.now += 2
    cache.stop_idle()
    assert cache.watching() == set()
    api.client.patch(f"/api/v1/namespaces/{namespace}/configmaps/env-only",
                     {"data": {"k": "new"}})
    assert cache.get(*key)["data"] == {"k": "new"}   # a fresh list, not the stopped copy
    assert cache.watching() == {key}


def test_an_unregistered_object_is_unavailable(namespace, client, cache):
    with pytest.raises(ObjectUnavailable, match=f"^couldn't get secret {namespace}/s: object "
                       f'"{namespace}"/"s" not registered$'):
        ConfigObjects(client, cache=cache).secret(namespace, "s")
