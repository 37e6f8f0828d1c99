"""The scheduler's parts without a server: integer requests, taints and tolerations as
kube-scheduler filters them, the cache's incremental accounting (assumed pods, heartbeats that
change nothing) and the scheduling queue's order, backoff and parking."""
from __future__ import annotations

from apiserver.scheduler.cache import Cache, node_info
from apiserver.scheduler.fit import load, nodes_to_find, unfit_reasons
from apiserver.scheduler.quantities import pod_requests
from apiserver.scheduler.queue import SchedulingQueue


def node(name: str, cpu: str = "2", ready: str = "True", taints: list | None = None,
         unschedulable: bool = False, heartbeat: str = "t0") -> dict:
    return {"metadata": {"name": name, "labels": {"zone": "a"}},
            "spec": {"taints": taints or [], "unschedulable": unschedulable},
            "status": {"allocatable": {"cpu": cpu, "memory": "1Gi", "pods": "3"},
                       "conditions": [{"type": "Ready", "status": ready,
                                       "lastHeartbeatTime": heartbeat}]}}


def pod(name: str, cpu: str = "500m", priority: int = 0, created: str = "t",
        **spec) -> dict:
    return {"metadata": {"name": name, "namespace": "d", "uid": name,
                         "creationTimestamp": created},
            "spec": {"priority": priority, "containers": [
                {"name": "c", "resources": {"requests": {"cpu": cpu, "memory": "100Mi"}}}],
                **spec}}


def why(p: dict, n: dict, cache: Cache | None = None) -> list[str]:
    info = cache.nodes[n["metadata"]["name"]] if cache else node_info(n)
    return unfit_reasons(p, pod_requests(p), info)


def test_requests_are_integers_millicpu_and_bytes():
    p = pod("p", cpu="0.25")
    p["spec"]["initContainers"] = [{"name": "i", "resources": {"requests": {"cpu": "1"}}}]
    assert pod_requests(p) == {"cpu": 1000, "memory": 100 * 2**20}
    assert pod_requests(pod("q", cpu="1m")) == {"cpu": 1, "memory": 100 * 2**20}


def test_taints_filter_with_tolerations_and_ready_stands_for_its_taint():
    assert why(pod("p"), node("n")) == []
    down = node("n", ready="False")
    assert why(pod("p"), down) == ["node(s) had untolerated taint {node.kubernetes.io/not-ready: }"]
    tolerant = pod("p", tolerations=[{"key": "node.kubernetes.io/not-ready",
                                      "operator": "Exists", "effect": "NoSchedule"}])
    assert why(tolerant, down) == []
    assert why(pod("p"), node("n", ready="Unknown")) == [
        "node(s) had untolerated taint {node.kubernetes.io/unreachable: }"]
    # The controller's own taint is not doubled; its NoExecute twin needs tolerating too.
    tainted = node("n", ready="False", taints=[
        {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}])
    assert len(node_info(tainted).taints) == 2
    assert why(tolerant, tainted) == [
        "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"]
    everything = pod("p", tolerations=[{"operator": "Exists"}])
    assert why(everything, tainted) == []
    # PreferNoSchedule does not filter; Equal needs the value.
    soft = node("n", taints=[{"key": "k", "value": "v", "effect": "PreferNoSchedule"},
                             {"key": "k", "value": "v", "effect": "NoSchedule"}])
    assert why(pod("p", tolerations=[{"key": "k", "value": "w"}]), soft) == [
        "node(s) had untolerated taint {k: v}"]
    assert why(pod("p", tolerations=[{"key": "k", "value": "v"}]), soft) == []


def test_unschedulable_node_unless_tolerated():
    cordoned = node("n", unschedulable=True)
    assert why(pod("p"), cordoned) == ["node(s) were unschedulable"]
    assert why(pod("p", tolerations=[{"key": "node.kubernetes.io/unschedulable",
                                      "operator": "Exists", "effect": "NoSchedule"}]),
               cordoned) == []


def test_cache_counts_assumed_and_bound_pods_and_ignores_heartbeats():
    cache = Cache()
    assert cache.set_node(node("n"))
    n = cache.nodes["n"]
    cache.assume("a", pod_requests(pod("a", cpu="1500m")), "n")
    assert n.requested["cpu"] == 1500 and n.pod_count == 1
    assert why(pod("b", cpu="600m"), node("n"), cache) == ["Insufficient cpu"]
    cache.forget("a")
    assert n.requested["cpu"] == 0 and n.pod_count == 0
    cache.assume("a", pod_requests(pod("a")), "n")
    cache.bound("a", "n", pod("a"))     # the binding seen: counted once
    assert not cache.is_assumed("a") and n.pod_count == 1
    cache.forget("a")                   # no longer an assumption: stays
    assert n.pod_count == 1
    # A status patch that changes nothing filters read: the same NodeInfo, no wake-up.
    assert not cache.set_node(node("n", heartbeat="t1"))
    assert cache.nodes["n"] is n and n.node["status"]["conditions"][0]["lastHeartbeatTime"] == "t1"
    assert not cache.set_node(node("n", ready="False"))    # tighter: nobody to wake
    assert cache.set_node(node("n"))                       # taint lifted: wake parked pods
    assert cache.set_node(node("n", cpu="4"))              # more room
    assert cache.nodes["n"].pod_count == 1
    assert cache.remove_pod("a") and not cache.remove_pod("a")
    assert load(cache.nodes["n"]) == 0.0


def test_cache_keeps_pods_of_an_unseen_or_deleted_node():
    cache = Cache()
    cache.bound("a", "later", pod("a"))
    assert cache.schedulable_nodes() == []
    cache.set_node(node("later"))
    assert cache.nodes["later"].pod_count == 1
    assert [i.name for i in cache.schedulable_nodes()] == ["later"]
    cache.remove_node("later")
    assert cache.schedulable_nodes() == [] and cache.nodes["later"].pod_count == 1
    cache.remove_pod("a")
    assert "later" not in cache.nodes


def test_queue_orders_by_priority_then_age_and_backs_off():
    q = SchedulingQueue()
    q.add(pod("old", created="1"), {})
    q.add(pod("new", created="2"), {})
    q.add(pod("high", priority=10, created="3"), {})
    assert [q.pop(0).uid for _ in range(3)] == ["high", "old", "new"]
    assert q.pop(0) is None
    # "old" fit nowhere (first attempt): parked; an event moves it to backoff for 1 s.
    q.add(pod("old", created="1"), {})     # its own status write while in flight
    old = q._pods["old"]
    q.unschedulable(old, 100.0)
    q.move_all(100.5)
    assert q.pop(100.5) is None and q.next_backoff() == 101.0
    assert q.pop(101.0).uid == "old"
    q.unschedulable(old, 102.0)            # second attempt: 2 s
    q.move_all(105.0)                      # its backoff is over: straight to activeQ
    assert q.pop(105.0).uid == "old"
    old.attempts = 9
    q.retry(old, 200.0)                    # a failed binding: back after at most 10 s
    assert q.next_backoff() == 210.0


def test_queue_parked_pods_move_on_relevant_updates_and_the_flush():
    q = SchedulingQueue()
    q.add(pod("p"), {})
    p = q.pop(0)
    q.unschedulable(p, 0.0)
    status_only = pod("p")
    status_only["status"] = {"conditions": [{"type": "PodScheduled", "status": "False"}]}
    q.add(status_only, {})
    assert q.pop(50.0) is None             # its own condition write does not wake it
    q.flush(10.0, 30.0)
    assert q.pop(10.0) is None
    q.flush(31.0, 30.0)
    assert q.pop(31.0).uid == "p"
    q.unschedulable(p, 40.0)
    q.add(pod("p", nodeSelector={"zone": "a"}), {})   # its spec changed: try again
    assert q.pop(40.0).uid == "p"
    q.delete("p")
    assert len(q) == 0


def test_nodes_to_find_as_kube():
    assert nodes_to_find(50) == 50
    assert nodes_to_find(100) == 100
    assert nodes_to_find(300) == 144       # 48 %
    assert nodes_to_find(1000) == 420      # 42 %
    assert nodes_to_find(5000) == 500      # 10 %
