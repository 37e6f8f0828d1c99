"""Node lifecycle and taint eviction in a real pycontroller-manager, each test on an API server
of its own (the zones' states depend on every node of the cluster): a Node whose Lease the test
stops renewing (no kubelet: Node and Lease made through the API) turns Unknown and gets the
unreachable taints while another node stays healthy; a pod bound to it with tolerationSeconds: 2
is deleted, one that tolerates forever stays; when the node reports Ready again the taints go.
With every node down (master disruption mode) nothing is tainted NoExecute. Plus the taint and
zone rules as units."""
from __future__ import annotations

import threading
import uuid

import pytest

from controllers.nodes import taints, zones
from controllers_testlib import start_manager, wait_for
from kubeapi import kubeconfig, timefmt
from kubeapi.restclient import ApiClient
from kubeapi.status import ApiError

LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
PODS = "/api/v1/namespaces/default/pods"
FAST = ("--leader-elect=false", "--controllers=node-lifecycle-controller,"
        "taint-eviction-controller", "--node-monitor-grace-period=2s",
        "--node-monitor-period=0.2s")


def ready(status: str = "True") -> dict:
    now = timefmt.rfc3339()
    return {"type": "Ready", "status": status, "reason": "KubeletReady",
            "message": "kubelet is posting ready status", "lastHeartbeatTime": now,
            "lastTransitionTime": now}


@pytest.fixture
def api(own_server):
    client = ApiClient(kubeconfig.load(own_server.kubeconfig), "controllers-tests")
    yield client
    client.close()


def make_node(client, status: str = "True") -> str:
    name = "nl-" + uuid.uuid4().hex[:8]
    client.create("/api/v1/nodes", {"metadata": {"name": name}, "spec": {}})
    client.patch(f"/api/v1/nodes/{name}/status", {"status": {"conditions": [ready(status)]}})
    client.create(LEASES, {"metadata": {"name": name}, "spec": {
        "holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": timefmt.micro()}})
    return name


class Renewer:
    """Renews the Leases of the nodes it holds, as their kubelets would; drop() stops one."""

    def __init__(self, client, *nodes: str) -> None:
        self.client = client
        self.nodes = set(nodes)
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.wait(0.3):
            with self.lock:
                nodes = list(self.nodes)
            for name in nodes:
                self.client.patch(f"{LEASES}/{name}", {"spec": {"renewTime": timefmt.micro()}})

    def renewals(self, name: str, count: int = 3) -> None:
        """Waits until the lease was renewed `count` times."""
        for _ in range(count):
            rv = self.client.get(f"{LEASES}/{name}")["metadata"]["resourceVersion"]
            wait_for(lambda: self.client.get(f"{LEASES}/{name}")["metadata"]["resourceVersion"]
                     != rv, what="renewal")

    def add(self, *names: str) -> None:
        with self.lock:
            self.nodes.update(names)

    def drop(self, name: str) -> None:
        with self.lock:
            self.nodes.discard(name)

    def stop(self) -> None:
        self.done.set()
        self.thread.join()


@pytest.fixture
def renewer(api):
    r = Renewer(api)
    yield r
    r.stop()


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


def deleted(client, name: str) -> bool:
    """Deleted as the API sees it: gone, or terminating (no kubelet confirms the end)."""
    try:
        p = client.get(f"{PODS}/{name}")
    except ApiError as e:
        return e.code == 404
    return bool(p["metadata"].get("deletionTimestamp"))


def events(client, ns: str, name: str) -> list[tuple[str, str, str, str]]:
    items = client.get(f"/api/v1/namespaces/{ns}/events",
                       {"fieldSelector": f"involvedObject.name={name}"})["items"]
    return [(e["type"], e["reason"], e["message"], e["source"]["component"]) for e in items]


def test_unrenewed_lease_unknown_taint_evict_and_recover(request, own_server, api, renewer):
    down, healthy = make_node(api), make_node(api)
    renewer.add(down, healthy)
    api.create(PODS, pod("short", down, [
        {"key": taints.UNREACHABLE, "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 2}]))
    api.create(PODS, pod("forever", down, [
        {"key": taints.UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}]))
    created = api.create(PODS, pod("defaulted", down))
    api.patch(f"{PODS}/defaulted/status", {"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": timefmt.rfc3339()}]}})
    assert {(t.get("key"), t.get("tolerationSeconds")) for t in
            created["spec"]["tolerations"]} >= {(taints.UNREACHABLE, 300)}
    manager = start_manager(request, own_server, *FAST)
    manager.wait_log("Starting node lifecycle monitor")
    renewer.renewals(down)  # renewals keep it Ready beyond the grace period
    assert condition(api, down)["status"] == "True"
    renewer.drop(down)

    cond = wait_for(lambda: condition(api, down)["status"] == "Unknown" and
                    condition(api, down), timeout=20, what="Ready Unknown")
    assert cond["reason"] == "NodeStatusUnknown"
    assert cond["message"] == "Kubelet stopped posting node status."
    never = condition(api, down, "MemoryPressure")
    assert never["status"] == "Unknown" and never["reason"] == "NodeStatusNeverUpdated"
    wait_for(lambda: taint_keys(api, down) == {(taints.UNREACHABLE, "NoExecute"),
                                               (taints.UNREACHABLE, "NoSchedule")},
             what="unreachable taints")
    wait_for(lambda: deleted(api, "short"), timeout=20, what="short evicted")
    assert not deleted(api, "forever")
    assert not deleted(api, "defaulted")  # 300 s to go
    assert "Deleting pod default/short" in manager.log()
    pod_ready = api.get(f"{PODS}/defaulted")["status"]["conditions"][0]
    assert (pod_ready["type"], pod_ready["status"]) == ("Ready", "False")
    wait_for(lambda: ("Warning", "NodeNotReady", "Node is not ready", "node-controller") in
             events(api, "default", "defaulted"), what="the pod's NodeNotReady event")
    assert ("Normal", "TaintManagerEviction", "Marking for deletion Pod default/short",
            "taint-eviction-controller") in events(api, "default", "short")
    assert ("Normal", "NodeNotReady", f"Node {down} status is now: NodeNotReady",
            "node-controller") in events(api, "default", down)
    assert condition(api, healthy)["status"] == "True" and not taint_keys(api, healthy)

    # The kubelet is back: Ready True, a renewal; the taints go.
    api.patch(f"/api/v1/nodes/{down}/status", {"status": {"conditions": [ready()]}})
    renewer.add(down)
    wait_for(lambda: not taint_keys(api, down), what="taints removed")
    manager.wait_log(f"Node {down}: removed taint {taints.UNREACHABLE}")
    assert ("Normal", "NodeReady", f"Node {down} status is now: NodeReady",
            "node-controller") in events(api, "default", down)
    assert not deleted(api, "forever")


def test_not_ready_and_untolerated_taints_evict_at_once(request, own_server, api, renewer):
    node, healthy = make_node(api, "False"), make_node(api)
    renewer.add(node, healthy)
    api.create(PODS, pod("zero", node, [{"key": taints.NOT_READY, "operator": "Exists",
                                         "effect": "NoExecute", "tolerationSeconds": 0}]))
    api.create(PODS, pod("defaulted", node))
    start_manager(request, own_server, "--leader-elect=false",
                  "--controllers=nodelifecycle,taint-eviction-controller",
                  "--node-monitor-grace-period=1h")
    wait_for(lambda: taint_keys(api, node) == {(taints.NOT_READY, "NoExecute"),
                                               (taints.NOT_READY, "NoSchedule")},
             what="not-ready taints")
    wait_for(lambda: deleted(api, "zero"), what="zero seconds evicted")
    assert not deleted(api, "defaulted")  # DefaultTolerationSeconds: 300 s
    # A NoExecute taint no toleration of the pod matches: out at once.
    current = api.get(f"/api/v1/nodes/{node}")
    api.patch(f"/api/v1/nodes/{node}", {"metadata": {
        "resourceVersion": current["metadata"]["resourceVersion"]}, "spec": {
        "taints": current["spec"]["taints"] + [{"key": "example.com/evict",
                                                "effect": "NoExecute"}]}})
    wait_for(lambda: deleted(api, "defaulted"), what="untolerated evicted")


def test_master_disruption_mode_evicts_nothing(request, own_server, api, renewer):
    """Every node down looks like the control plane's problem: NoSchedule taints only, no
    evictions, until a node is Ready again."""
    only = make_node(api)
    api.create(PODS, pod("victim", only, [{"key": taints.UNREACHABLE, "operator": "Exists",
                                           "effect": "NoExecute", "tolerationSeconds": 0}]))
    manager = start_manager(request, own_server, *FAST)
    wait_for(lambda: (taints.UNREACHABLE, "NoSchedule") in taint_keys(api, only),
             what="unreachable NoSchedule taint")
    # Both taints come in one write when NoExecute is allowed: here it was not.
    assert taint_keys(api, only) == {(taints.UNREACHABLE, "NoSchedule")}
    assert not deleted(api, "victim")
    manager.wait_log("Entering master disruption mode")
    healthy = make_node(api)
    renewer.add(healthy)
    manager.wait_log("Exiting master disruption mode")
    wait_for(lambda: (taints.UNREACHABLE, "NoExecute") in taint_keys(api, only),
             what="NoExecute taint once a node is Ready")
    wait_for(lambda: deleted(api, "victim"), what="victim evicted")


def test_noexecute_tainting_rate_per_zone(request, own_server, api, renewer):
    """Two nodes down at once: one is tainted NoExecute at once, the other when the zone's
    --node-eviction-rate gives the next token."""
    first, second, healthy = make_node(api), make_node(api), make_node(api)
    renewer.add(healthy)
    manager = start_manager(request, own_server, *FAST, "--node-eviction-rate=0.25")
    no_execute = lambda n: (taints.UNREACHABLE, "NoExecute") in taint_keys(api, n)  # noqa
    both_down = wait_for(lambda: all((taints.UNREACHABLE, "NoSchedule") in taint_keys(api, n)
                                     for n in (first, second)) and
                         [no_execute(first), no_execute(second)], what="both unreachable")
    assert sorted(both_down) == [False, True]  # one now, one later
    wait_for(lambda: no_execute(first) and no_execute(second), what="the second in turn")
    assert "Exiting master disruption mode" not in manager.log()


def test_cordon_taints_unschedulable(request, own_server, api, renewer):
    """kubectl cordon sets spec.unschedulable; the controller adds the unschedulable taint,
    uncordon takes it away (TaintNodesByCondition)."""
    node = make_node(api)
    renewer.add(node)
    start_manager(request, own_server, "--leader-elect=false", "--controllers=nodelifecycle",
                  "--node-monitor-period=0.2s")
    own_server.kubectl("cordon", node)
    wait_for(lambda: taint_keys(api, node) == {(taints.UNSCHEDULABLE, "NoSchedule")},
             what="unschedulable taint")
    out = own_server.kubectl("describe", "node", node).stdout
    assert "node.kubernetes.io/unschedulable:NoSchedule" in out
    own_server.kubectl("uncordon", node)
    wait_for(lambda: not taint_keys(api, node), what="taint gone after uncordon")


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
    assert taints.reconcile(added, unknown, False, zones.HOLD) is None
    assert [(t["key"], t["effect"]) for t in
            taints.reconcile(added, unknown, False, zones.CLEAR)] == [
        ("mine", "NoSchedule"), (taints.UNREACHABLE, "NoSchedule")]
    assert [(t["key"], t["effect"]) for t in
            taints.reconcile([], unknown, False, zones.HOLD)] == [
        (taints.UNREACHABLE, "NoSchedule")]
    assert [t["key"] for t in taints.reconcile(added, {"Ready": "True"}, False)] == ["mine"]
    assert {t["key"] for t in taints.reconcile(added, {"Ready": "False"}, False)} == \
        {"mine", taints.NOT_READY}
    pressure = taints.reconcile([], {"Ready": "True", "DiskPressure": "True",
                                     "PIDPressure": "False"}, True)
    assert {(t["key"], t["effect"]) for t in pressure} == {
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        (taints.UNSCHEDULABLE, "NoSchedule")}


def test_zone_rules():
    assert zones.zone_state(0, 1) == zones.FULL
    assert zones.zone_state(1, 2) == zones.NORMAL      # at most 2 down is never a disruption
    assert zones.zone_state(2, 3) == zones.PARTIAL     # 60 % >= 55 %
    assert zones.zone_state(3, 3) == zones.NORMAL
    a = {"metadata": {"labels": {zones.ZONE_LABEL: "a"}}}
    assert zones.zone_key(a) == ":\x00:a" and zones.zone_key({"metadata": {}}) == ""
    states = zones.states({"n1": ("a", False), "n2": ("b", True)})
    assert states == {"a": zones.FULL, "b": zones.NORMAL}
    assert zones.tainting_rates(states, {"a": 1, "b": 1}) == {"a": 0.1, "b": 0.1}
    assert zones.tainting_rates({"a": zones.FULL}, {"a": 1}) == {"a": -1.0}
    assert zones.tainting_rates({"a": zones.PARTIAL, "b": zones.NORMAL},
                                {"a": 5, "b": 1}) == {"a": 0.0, "b": 0.1}
    assert zones.tainting_rates({"a": zones.PARTIAL}, {"a": 60}) == {"a": 0.01}
    assert [zones.mode(r) for r in (-1.0, 0.0, 0.1)] == [zones.CLEAR, zones.HOLD, zones.TAINT]
    bucket = zones.TokenBucket(0.1)
    assert bucket.take() and not bucket.take()  # one node, then the next in 10 s
    assert zones.zone_state(2, 4, zones.Thresholds(unhealthy_zone=0.7)) == zones.NORMAL
