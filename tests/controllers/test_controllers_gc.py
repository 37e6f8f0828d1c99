"""The garbage collector in a real pycontroller-manager against the real pyapiserver, driven
by the real kubectl: background, foreground (with a blocking dependent) and orphan cascades on
ConfigMaps owning ConfigMaps (and a Pod), dangling references, garbage left while it was down."""
from __future__ import annotations

import pytest

from controllers_testlib import start_manager, wait_for
from kubeapi.status import ApiError

GC = ("--controllers=garbage-collector-controller", "--leader-elect=false")


@pytest.fixture
def gc(request, server):
    manager = start_manager(request, server, *GC)
    manager.wait_log("Started 1 controllers")
    return manager


def cm_path(ns: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{ns}/configmaps" + (f"/{name}" if name else "")


def make(client, ns: str, name: str, *owners: dict, block: bool = False,
         finalizers: list[str] | None = None) -> dict:
    refs = [{"apiVersion": "v1", "kind": o["kind"], "name": o["metadata"]["name"],
             "uid": o["metadata"]["uid"], **({"blockOwnerDeletion": True} if block else {})}
            for o in owners]
    meta = {"name": name, "ownerReferences": refs} if refs else {"name": name}
    if finalizers:
        meta["finalizers"] = finalizers
    obj = client.create(cm_path(ns), {"kind": "ConfigMap", "metadata": meta})
    obj["kind"] = "ConfigMap"
    return obj


def get(client, ns: str, name: str) -> dict | None:
    try:
        return client.get(cm_path(ns, name))
    except ApiError as e:
        if e.code == 404:
            return None
        raise


def gone(client, ns: str, name: str) -> bool:
    return get(client, ns, name) is None


def test_background_cascade(gc, server, client, namespace):
    owner = make(client, namespace, "owner")
    child = make(client, namespace, "child", owner)
    make(client, namespace, "grandchild", child)
    client.create(f"/api/v1/namespaces/{namespace}/pods", {
        "metadata": {"name": "owned-pod", "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
             "uid": owner["metadata"]["uid"]}]},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    make(client, namespace, "bystander")
    out = server.kubectl("delete", "configmap", "owner", "-n", namespace,
                         "--cascade=background").stdout
    assert 'configmap "owner" deleted' in out
    for name in ("child", "grandchild"):
        wait_for(lambda: gone(client, namespace, name), what=f"{name} collected")

    def pod_gone():
        try:
            client.get(f"/api/v1/namespaces/{namespace}/pods/owned-pod")
        except ApiError as e:
            return e.code == 404
        return False
    wait_for(pod_gone, what="owned pod collected")
    assert not gone(client, namespace, "bystander")
    assert "Deleting ConfigMap " + namespace + "/child" in gc.log()


def test_foreground_waits_for_blocking_dependents(gc, server, client, namespace):
    owner = make(client, namespace, "owner")
    make(client, namespace, "free", owner)
    # A blocking dependent that a finalizer of the test's keeps in deletion.
    make(client, namespace, "blocker", owner, block=True, finalizers=["example.com/hold"])
    proc = server.kubectl("delete", "configmap", "owner", "-n", namespace,
                          "--cascade=foreground", "--wait=false")
    assert 'configmap "owner" deleted' in proc.stdout
    wait_for(lambda: gone(client, namespace, "free"), what="free dependent deleted")
    blocker = wait_for(lambda: (get(client, namespace, "blocker") or {}).get("metadata", {})
                       .get("deletionTimestamp") and get(client, namespace, "blocker"),
                       what="blocking dependent deleting")
    held = get(client, namespace, "owner")
    assert held["metadata"]["deletionTimestamp"]
    assert held["metadata"]["finalizers"] == ["foregroundDeletion"]
    client.patch(cm_path(namespace, "blocker"), {"metadata": {
        "finalizers": None, "resourceVersion": blocker["metadata"]["resourceVersion"]}})
    wait_for(lambda: gone(client, namespace, "owner"), what="owner deleted after its dependents")
    assert "removed finalizer foregroundDeletion" in gc.log()


def test_foreground_kubectl_waits(gc, server, client, namespace):
    owner = make(client, namespace, "owner")
    child = make(client, namespace, "child", owner, block=True)
    make(client, namespace, "grandchild", child, block=True)
    server.kubectl("delete", "configmap", "owner", "-n", namespace, "--cascade=foreground",
                   "--timeout=30s", timeout=40)
    for name in ("owner", "child", "grandchild"):
        assert gone(client, namespace, name)


def test_orphan(gc, server, client, namespace):
    owner = make(client, namespace, "owner")
    other = make(client, namespace, "other-owner")
    make(client, namespace, "a", owner)
    make(client, namespace, "b", owner, other)
    server.kubectl("delete", "configmap", "owner", "-n", namespace, "--cascade=orphan",
                   "--timeout=30s", timeout=40)
    assert gone(client, namespace, "owner")
    a, b = get(client, namespace, "a"), get(client, namespace, "b")
    assert "ownerReferences" not in a["metadata"]
    assert [r["name"] for r in b["metadata"]["ownerReferences"]] == ["other-owner"]
    assert other["metadata"]["uid"] == b["metadata"]["ownerReferences"][0]["uid"]


def test_dangling_reference_removed_when_another_owner_lives(gc, client, namespace):
    alive = make(client, namespace, "alive")
    ghost = {"kind": "ConfigMap", "metadata": {"name": "ghost",
                                               "uid": "00000000-0000-0000-0000-000000000001"}}
    make(client, namespace, "dep", alive, ghost)
    wait_for(lambda: [r["name"] for r in get(client, namespace, "dep")["metadata"]
                      ["ownerReferences"]] == ["alive"], what="dangling reference removed")
    make(client, namespace, "only-ghost", ghost)
    wait_for(lambda: gone(client, namespace, "only-ghost"), what="dependent of a ghost deleted")


def test_garbage_left_while_down_is_collected_at_start(request, server, client, namespace):
    owner = make(client, namespace, "owner")
    make(client, namespace, "child", owner)
    client.delete(cm_path(namespace, "owner"))
    assert not gone(client, namespace, "child")
    manager = start_manager(request, server, *GC)
    wait_for(lambda: gone(client, namespace, "child"), what="child collected at start")
    assert manager.stop() == 0


def test_python_client_propagation(gc, server, namespace):
    """The official client's delete with V1DeleteOptions(propagation_policy=...)."""
    from kubernetes import client as k8s
    api = server.client()
    try:
        core = k8s.CoreV1Api(api)
        owner = core.create_namespaced_config_map(namespace, k8s.V1ConfigMap(
            metadata=k8s.V1ObjectMeta(name="owner")))
        ref = k8s.V1OwnerReference(api_version="v1", kind="ConfigMap", name="owner",
                                   uid=owner.metadata.uid, block_owner_deletion=True)
        core.create_namespaced_config_map(namespace, k8s.V1ConfigMap(
            metadata=k8s.V1ObjectMeta(name="child", owner_references=[ref])))
        core.delete_namespaced_config_map("owner", namespace, body=k8s.V1DeleteOptions(
            propagation_policy="Foreground"))
        names = lambda: {c.metadata.name for c in  # noqa: E731
                         core.list_namespaced_config_map(namespace).items}
        wait_for(lambda: not {"owner", "child"} & names(), what="both deleted")
    finally:
        api.close()


def test_cluster_scoped_owner_and_foreground_without_dependents(gc, server, client, namespace):
    """A Node owning a namespaced ConfigMap; an owner with no dependents in foreground
    deletion goes at once."""
    import uuid
    node_name = "gc-" + uuid.uuid4().hex[:8]
    node = client.create("/api/v1/nodes", {"metadata": {"name": node_name}})
    node["kind"] = "Node"
    make(client, namespace, "of-node", node)
    client.delete(f"/api/v1/nodes/{node_name}")
    wait_for(lambda: gone(client, namespace, "of-node"), what="dependent of a deleted Node")
    make(client, namespace, "lonely")
    server.kubectl("delete", "configmap", "lonely", "-n", namespace, "--cascade=foreground",
                   "--timeout=30s", timeout=40)
    assert gone(client, namespace, "lonely")
