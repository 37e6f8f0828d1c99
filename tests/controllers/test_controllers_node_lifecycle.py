"""Node lifecycle and taint eviction in a real pycontroller-manager: a Node whose Lease the test
stops renewing (no kubelet: Node and Lease made through the API) turns Unknown and gets the
unreachable taints; a pod bound to it with tolerationSeconds: 2 is deleted, one that tolerates
forever stays; when the node reports Ready again the taints go. Plus the taint rules as units."""
from __future__ import annotations

import threading
import uuid

import pytest

from controllers import taints
from controllers_testlib import start_manager, wait_for
from kubeapi import timefmt
from kubeapi.status import ApiError

LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"


def ready(status: str = "True") -> dict:
    now = timefmt.rfc3339()
    return {"type": "Ready", "status": status, "reason": "KubeletReady",
            "message": "kubelet is posting ready status", "lastHeartbeatTime": now,
            "lastTransitionTime": now}


@pytest.fixture
def node(client):
    name = "nl-" + uuid.uuid4().hex[:8]
    client.create("/api/v1/nodes", {"metadata": {"name": name}, "spec": {}})
    client.patch(f"/api/v1/nodes/{name}/status", {"status": {"conditions": [ready()]}})
    client.create(LEASES, {"metadata": {"name": name}, "spec": {
        "holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": timefmt.micro()}})
    yield name
    for path in (f"/api/v1/nodes/{name}", f"{LEASES}/{name}"):
        try:
            client.delete(path)
        except ApiError:
            pass


def pod(name: str, node: str, tolerations: list[dict] | None = None) -> dict:
    spec = {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}
    if tolerations is not None:
        spec["tolerations"] = tolerations
    return {"metadata": {"name": name}, "spec": spec}


def condition(client, node: str, kind: str = "Ready") -> dict:
    conds = client.get(f"/api/v1/nodes/{node}")["status"].get("conditions") or []
    return next((c for c in conds if c["type"] == kind), {})


def taint_keys(client, node: str) -> set[tuple[str, str]]:
    spec = client.get(f"/api/v1/nodes/{node}").get("spec") or {}
    return {(t["key"], t["effect"]) for t in spec.get("taints") or []}


def deleted(client, ns: str, name: str) -> bool:
    """Deleted as the API sees it: gone, or terminating (no kubelet confirms the end)."""
    try:
        p = client.get(f"/api/v1/namespaces/{ns}/pods/{name}")
    except ApiError as e:
        return e.code == 404
    return bool(p["metadata"].get("deletionTimestamp"))


def events(client, ns: str, name: str) -> list[tuple[str, str, str, str]]:
    items = client.get(f"/api/v1/namespaces/{ns}/events",
                       {"fieldSelector": f"involvedObject.name={name}"})["items"]
    return [(e["type"], e["reason"], e["message"], e["source"]["component"]) for e in items]


def test_unrenewed_lease_unknown_taint_evict_and_recover(request, server, client, namespace,
                                                         node):
    pods = f"/api/v1/namespaces/{namespace}/pods"
    client.create(pods, pod("short", node, [
        {"key": taints.UNREACHABLE, "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 2}]))
    client.create(pods, pod("forever", node, [
        {"key": taints.UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}]))
    created = client.create(pods, pod("defaulted", node))
    client.patch(f"{pods}/defaulted/status", {"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": timefmt.rfc3339()}]}})
    assert {(t.get("key"), t.get("tolerationSeconds")) for t in
            created["spec"]["tolerations"]} >= {(taints.UNREACHABLE, 300)}
    # Renewed by the test while the manager starts, then no more.
    renewing = threading.Event()

    def renew():
        while not renewing.wait(0.3):
            client.patch(f"{LEASES}/{node}", {"spec": {"renewTime": timefmt.micro()}})
    renewer = threading.Thread(target=renew)
    renewer.start()
    try:
        manager = start_manager(request, server, "--leader-elect=false",
                                "--controllers=node-lifecycle-controller,"
                                "taint-eviction-controller",
                                "--node-monitor-grace-period=2s", "--node-monitor-period=0.2s")
        manager.wait_log("Starting node lifecycle monitor")
        # Renewals keep it Ready beyond the grace period.
        for _ in range(3):
            rv = client.get(f"{LEASES}/{node}")["metadata"]["resourceVersion"]
            wait_for(lambda: client.get(f"{LEASES}/{node}")["metadata"]["resourceVersion"]
                     != rv, what="renewal")
        assert condition(client, node)["status"] == "True"
    finally:
        renewing.set()
        renewer.join()

    cond = wait_for(lambda: condition(client, node)["status"] == "Unknown" and
                    condition(client, node), timeout=20, what="Ready Unknown")
    assert cond["reason"] == "NodeStatusUnknown"
    assert cond["message"] == "Kubelet stopped posting node status."
    never = condition(client, node, "MemoryPressure")
    assert never["status"] == "Unknown" and never["reason"] == "NodeStatusNeverUpdated"
    wait_for(lambda: taint_keys(client, node) == {(taints.UNREACHABLE, "NoExecute"),
                                                  (taints.UNREACHABLE, "NoSchedule")},
             what="unreachable taints")
    wait_for(lambda: deleted(client, namespace, "short"), timeout=20, what="short evicted")
    assert not deleted(client, namespace, "forever")
    assert not deleted(client, namespace, "defaulted")  # 300 s to go
    assert f"Deleting pod {namespace}/short" in manager.log()
    pod_ready = client.get(f"{pods}/defaulted")["status"]["conditions"][0]
    assert (pod_ready["type"], pod_ready["status"]) == ("Ready", "False")
    wait_for(lambda: ("Warning", "NodeNotReady", "Node is not ready", "node-controller") in
             events(client, namespace, "defaulted"), what="the pod's NodeNotReady event")
    assert ("Normal", "TaintManagerEviction", f"Marking for deletion Pod {namespace}/short",
            "taint-eviction-controller") in events(client, namespace, "short")
    assert ("Normal", "NodeNotReady", f"Node {node} status is now: NodeNotReady",
            "node-controller") in events(client, "default", node)

    # The kubelet is back: Ready True, a renewal; the taints go.
    client.patch(f"/api/v1/nodes/{node}/status", {"status": {"conditions": [ready()]}})
    client.patch(f"{LEASES}/{node}", {"spec": {"renewTime": timefmt.micro()}})
    wait_for(lambda: not taint_keys(client, node), what="taints removed")
    manager.wait_log(f"Node {node}: removed taint {taints.UNREACHABLE}")
    assert ("Normal", "NodeReady", f"Node {node} status is now: NodeReady",
            "node-controller") in events(client, "default", node)
    assert not deleted(client, namespace, "forever")


def test_not_ready_and_untolerated_taints_evict_at_once(request, server, client, namespace,
                                                        node):
    pods = f"/api/v1/namespaces/{namespace}/pods"
    client.create(pods, pod("zero", node, [{"key": taints.NOT_READY, "operator": "Exists",
                                            "effect": "NoExecute", "tolerationSeconds": 0}]))
    client.create(pods, pod("defaulted", node))
    client.patch(f"/api/v1/nodes/{node}/status", {"status": {"conditions": [ready("False")]}})
    start_manager(request, server, "--leader-elect=false",
                  "--controllers=nodelifecycle,taint-eviction-controller",
                  "--node-monitor-grace-period=1h")
    wait_for(lambda: taint_keys(client, node) == {(taints.NOT_READY, "NoExecute"),
                                                  (taints.NOT_READY, "NoSchedule")},
             what="not-ready taints")
    wait_for(lambda: deleted(client, namespace, "zero"), what="zero seconds evicted")
    assert not deleted(client, namespace, "defaulted")  # DefaultTolerationSeconds: 300 s
    # A NoExecute taint no toleration of the pod matches: out at once.
    current = client.get(f"/api/v1/nodes/{node}")
    client.patch(f"/api/v1/nodes/{node}", {"metadata": {
        "resourceVersion": current["metadata"]["resourceVersion"]}, "spec": {
        "taints": current["spec"]["taints"] + [{"key": "example.com/evict",
                                                "effect": "NoExecute"}]}})
    wait_for(lambda: deleted(client, namespace, "defaulted"), what="untolerated evicted")


def test_taint_rules():
    unreachable = {"key": taints.UNREACHABLE, "effect": "NoExecute"}
    assert taints.tolerates({"operator": "Exists"}, unreachable)
    assert taints.tolerates({"key": taints.UNREACHABLE, "operator": "Exists"}, unreachable)
    assert not taints.tolerates({"key": taints.UNREACHABLE, "operator": "Exists",
                                 "effect": "NoSchedule"}, unreachable)
    assert not taints.tolerates({"key": "x", "operator": "Equal", "value": "y"}, unreachable)
    assert taints.tolerates({"key": "k", "value": "v"}, {"key": "k", "value": "v",
                                                          "effect": "NoExecute"})
    forever = [{"operator": "Exists"}]
    assert taints.toleration_seconds(forever, [unreachable]) is None
    assert taints.toleration_seconds([], [unreachable]) == 0.0
    assert taints.toleration_seconds(forever + [{"key": taints.UNREACHABLE, "operator":
                                                 "Exists", "tolerationSeconds": 5}],
                                     [unreachable]) == 5
    unknown = {"Ready": "Unknown", "MemoryPressure": "Unknown"}
    added = taints.reconcile([{"key": "mine", "effect": "NoSchedule"}], unknown, False)
    assert [(t["key"], t["effect"]) for t in added] == [
        ("mine", "NoSchedule"), (taints.UNREACHABLE, "NoSchedule"),
        (taints.UNREACHABLE, "NoExecute")]
    assert all(t.get("timeAdded") for t in added[1:])
    assert taints.reconcile(added, unknown, False) is None
    assert [t["key"] for t in taints.reconcile(added, {"Ready": "True"}, False)] == ["mine"]
    assert {t["key"] for t in taints.reconcile(added, {"Ready": "False"}, False)} == \
        {"mine", taints.NOT_READY}
    pressure = taints.reconcile([], {"Ready": "True", "DiskPressure": "True",
                                     "PIDPressure": "False"}, True)
    assert {(t["key"], t["effect"]) for t in pressure} == {
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        (taints.UNSCHEDULABLE, "NoSchedule")}


def test_cordon_taints_unschedulable(request, server, client, node):
    """kubectl cordon sets spec.unschedulable; the controller adds the unschedulable taint,
    uncordon takes it away (TaintNodesByCondition)."""
    start_manager(request, server, "--leader-elect=false", "--controllers=nodelifecycle",
                  "--node-monitor-period=0.2s")
    server.kubectl("cordon", node)
    wait_for(lambda: taint_keys(client, node) == {(taints.UNSCHEDULABLE, "NoSchedule")},
             what="unschedulable taint")
    out = server.kubectl("describe", "node", node).stdout
    assert "node.kubernetes.io/unschedulable:NoSchedule" in out
    server.kubectl("uncordon", node)
    wait_for(lambda: not taint_keys(client, node), what="taint gone after uncordon")
