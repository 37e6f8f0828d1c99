"""The ReplicaSet controller against the real pyapiserver, no kubelet: pods are API objects whose
phase and readiness the test writes through pods/status. Creation from the template with the
controller ownerReference, status counts (ready, available after minReadySeconds, fully
labeled), adoption of orphans and release of pods that stop matching, the deletion order when
scaling down, a burst of creations not duplicated, ReplicaFailure on create errors; and the
ordering rules as pure functions."""
from __future__ import annotations

import threading
import time

import pytest

from controllers.workloads.pod_util import deletion_order, node_ranks
from controllers.workloads.replicaset import slow_start_batch
from controllers_testlib import delete_pods, running, wait_for
from kubeapi import timefmt
from kubeapi.status import ApiError

RSS = "/apis/apps/v1/namespaces/{ns}/replicasets"
PODS = "/api/v1/namespaces/{ns}/pods"


@pytest.fixture
def controllers(client):
    with running(client, ["replicaset"]):
        yield


def replicaset(client, ns: str, name: str, replicas: int, labels: dict | None = None,
               **spec) -> dict:
    labels = labels or {"app": name}
    return client.create(RSS.format(ns=ns), {
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": {**labels, "tier": "t"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
                 **spec}})


def pods_of(client, ns: str, selector: str = "") -> list[dict]:
    q = {"labelSelector": selector} if selector else None
    return [p for p in client.get(PODS.format(ns=ns), q)["items"]
            if not p["metadata"].get("deletionTimestamp")]


def set_status(client, ns: str, name: str, phase: str = "Running", ready: bool = True,
               since: float | None = None, restarts: int = 0) -> None:
    stamp = timefmt.rfc3339(since)
    client.patch(f"{PODS.format(ns=ns)}/{name}/status", {"status": {
        "phase": phase,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                        "lastTransitionTime": stamp}],
        "containerStatuses": [{"name": "c", "image": "busybox", "imageID": "", "ready": ready,
                               "restartCount": restarts, "state": {}}]}})


def rs_status(client, ns: str, name: str) -> dict:
    return client.get(f"{RSS.format(ns=ns)}/{name}").get("status") or {}


@pytest.fixture
def ns(client, namespace):
    yield namespace
    delete_pods(client, namespace)


def test_creates_pods_from_template_with_controller_reference(client, ns, controllers):
    rs = replicaset(client, ns, "web", 3)
    pods = wait_for(lambda: len(pods_of(client, ns)) == 3 and pods_of(client, ns),
                    what="3 pods")
    for pod in pods:
        assert pod["metadata"]["name"].startswith("web-")
        assert pod["metadata"]["generateName"] == "web-"
        assert pod["metadata"]["labels"] == {"app": "web", "tier": "t"}
        assert pod["metadata"]["ownerReferences"] == [{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
            "uid": rs["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
    wait_for(lambda: rs_status(client, ns, "web").get("replicas") == 3, what="replicas 3")
    status = rs_status(client, ns, "web")
    assert status["fullyLabeledReplicas"] == 3 and "readyReplicas" not in status
    assert status["observedGeneration"] == 1
    assert status["terminatingReplicas"] == 0  # a pointer in Go: written when 0
    set_status(client, ns, pods[0]["metadata"]["name"])
    set_status(client, ns, pods[1]["metadata"]["name"])
    wait_for(lambda: rs_status(client, ns, "web").get("availableReplicas") == 2,
             what="2 available")
    assert rs_status(client, ns, "web")["readyReplicas"] == 2
    # A deleted pod is replaced.
    client.delete(f"{PODS.format(ns=ns)}/{pods[2]['metadata']['name']}",
                  {"gracePeriodSeconds": 0})
    wait_for(lambda: len(pods_of(client, ns)) == 3 and
             pods[2]["metadata"]["name"] not in {p["metadata"]["name"]
                                                 for p in pods_of(client, ns)},
             what="a replacement pod")


def test_min_ready_seconds_delays_available(client, ns, controllers):
    replicaset(client, ns, "slow", 1, minReadySeconds=2)
    pod = wait_for(lambda: pods_of(client, ns), what="a pod")[0]
    set_status(client, ns, pod["metadata"]["name"])
    wait_for(lambda: rs_status(client, ns, "slow").get("readyReplicas") == 1, what="ready")
    assert "availableReplicas" not in rs_status(client, ns, "slow")
    wait_for(lambda: rs_status(client, ns, "slow").get("availableReplicas") == 1,
             timeout=20, what="available after minReadySeconds")


def test_burst_is_not_duplicated_and_scales(client, ns, controllers):
    replicaset(client, ns, "many", 20)
    wait_for(lambda: rs_status(client, ns, "many").get("replicas") == 20, timeout=60,
             what="20 replicas")
    assert len(pods_of(client, ns)) == 20
    client.patch(f"{RSS.format(ns=ns)}/many", {"spec": {"replicas": 0}})
    wait_for(lambda: not pods_of(client, ns), timeout=60, what="no pods")
    client.patch(f"{RSS.format(ns=ns)}/many", {"spec": {"replicas": 5}})
    wait_for(lambda: len(pods_of(client, ns)) == 5, what="5 pods")
    # Stable: no sixth pod appears once status says 5.
    wait_for(lambda: rs_status(client, ns, "many").get("replicas") == 5, what="status 5")
    assert len(pods_of(client, ns)) == 5


def orphan(client, ns: str, name: str, labels: dict, node: str = "") -> dict:
    spec = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return client.create(PODS.format(ns=ns), {"metadata": {"name": name, "labels": labels},
                                              "spec": spec})


def test_adopts_orphans_and_releases_pods_that_stop_matching(client, ns):
    for i in range(2):
        orphan(client, ns, f"stray-{i}", {"app": "adopt"})
    orphan(client, ns, "other", {"app": "else"})
    # The controller starts after the orphans exist, so that its first list has them. Started
    # before, it could see the ReplicaSet before the orphans' watch events and create pods, as
    # kube's would.
    with running(client, ["replicaset"]):
        rs = replicaset(client, ns, "adopt", 2)

        def owned():
            return sorted(p["metadata"]["name"] for p in pods_of(client, ns)
                          if any(r["uid"] == rs["metadata"]["uid"]
                                 for r in p["metadata"].get("ownerReferences") or []))
        wait_for(lambda: owned() == ["stray-0", "stray-1"],
                 what=lambda: f"orphans adopted (pods: {owners(client, ns)})")
        assert len(pods_of(client, ns)) == 3  # nothing created: the orphans fill it
        client.patch(f"{PODS.format(ns=ns)}/stray-0", {"metadata": {"labels": {"app": "gone"}}})
        wait_for(lambda: "stray-0" not in owned() and len(owned()) == 2, what="released")
        released = client.get(f"{PODS.format(ns=ns)}/stray-0")
        assert not released["metadata"].get("ownerReferences")


def owners(client, ns: str) -> dict[str, list[str]]:
    """Each pod's name with its owners' names, for a failure's message."""
    return {p["metadata"]["name"]: [r["name"] for r in p["metadata"].get("ownerReferences") or []]
            for p in pods_of(client, ns)}


def test_scale_down_deletes_the_least_useful_pods_first(client, ns):
    client.create("/api/v1/nodes", {"metadata": {"name": f"{ns}-node"}})
    try:
        now = time.time()
        orphan(client, ns, "unassigned", {"app": "order"})
        orphan(client, ns, "pending", {"app": "order"}, node=f"{ns}-node")
        set_status(client, ns, "pending", phase="Pending", ready=False)
        orphan(client, ns, "notready", {"app": "order"}, node=f"{ns}-node")
        set_status(client, ns, "notready", ready=False)
        orphan(client, ns, "old-ready", {"app": "order"}, node=f"{ns}-node")
        set_status(client, ns, "old-ready", since=now - 4000)
        orphan(client, ns, "new-ready", {"app": "order"}, node=f"{ns}-node")
        set_status(client, ns, "new-ready", since=now - 10)
        with running(client, ["replicaset"]):   # after the orphans, as in the test above
            _scale_down(client, ns)
    finally:
        client.delete(f"/api/v1/nodes/{ns}-node")


def _scale_down(client, ns: str) -> None:
    replicaset(client, ns, "order", 5)
    wait_for(lambda: rs_status(client, ns, "order").get("replicas") == 5, what="adopted 5")
    assert len(pods_of(client, ns)) == 5  # nothing created: the orphans fill it
    expected = ["unassigned", "pending", "notready", "new-ready"]
    for keep in (4, 3, 2, 1):
        client.patch(f"{RSS.format(ns=ns)}/order", {"spec": {"replicas": keep}})
        gone = expected[4 - keep]
        wait_for(lambda: gone not in {p["metadata"]["name"] for p in pods_of(client, ns)},
                 what=f"{gone} deleted")
        assert len(pods_of(client, ns)) == keep
    assert [p["metadata"]["name"] for p in pods_of(client, ns)] == ["old-ready"]


def test_create_errors_set_replica_failure(client, ns, controllers):
    """Pods of a service account that does not exist are refused by admission: the ReplicaSet
    says why in its ReplicaFailure condition, and tried once, not once per replica."""
    client.create(RSS.format(ns=ns), {
        "metadata": {"name": "fail"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "fail"}},
                 "template": {"metadata": {"labels": {"app": "fail"}},
                              "spec": {"serviceAccountName": "missing",
                                       "containers": [{"name": "c", "image": "busybox"}]}}}})
    cond = wait_for(lambda: next((c for c in rs_status(client, ns, "fail").get("conditions") or []
                                  if c["type"] == "ReplicaFailure"), None),
                    what="ReplicaFailure condition")
    assert cond["status"] == "True" and cond["reason"] == "FailedCreate"
    assert "missing" in cond["message"]
    assert not pods_of(client, ns)
    events = client.get(f"/api/v1/namespaces/{ns}/events")["items"]
    assert any(e["reason"] == "FailedCreate" and e["involvedObject"]["name"] == "fail"
               for e in events)
    # Fixed: the condition goes away once pods are made.
    client.create(f"/api/v1/namespaces/{ns}/serviceaccounts", {"metadata": {"name": "missing"}})
    wait_for(lambda: rs_status(client, ns, "fail").get("replicas") == 3 and
             not rs_status(client, ns, "fail").get("conditions"), timeout=30,
             what="pods created and the condition removed")


def _pod(name, node="", phase="Running", ready=True, since=None, created=None, restarts=0,
         cost=None, uid=None):
    meta = {"name": name, "uid": uid or name,
            "creationTimestamp": timefmt.rfc3339(created) if created else None}
    if cost is not None:
        meta["annotations"] = {"controller.kubernetes.io/pod-deletion-cost": str(cost)}
    conds = [{"type": "Ready", "status": "True" if ready else "False",
              "lastTransitionTime": timefmt.rfc3339(since) if since else None}]
    return {"metadata": meta, "spec": {"nodeName": node},
            "status": {"phase": phase, "conditions": conds,
                       "containerStatuses": [{"restartCount": restarts}]}}


def test_deletion_order_is_kubes_active_pods_order():
    now = 1_000_000.0
    pods = [
        _pod("ready-old", "n", since=now - 5000, created=now - 6000),
        _pod("ready-new", "n", since=now - 5, created=now - 6000),
        _pod("unknown", "n", phase="Unknown", ready=False),
        _pod("pending", "n", phase="Pending", ready=False),
        _pod("unassigned", "", phase="Pending", ready=False),
        _pod("notready", "n", ready=False),
        _pod("notready-restarts", "n", ready=False, restarts=3),
        _pod("costly-notready", "n", ready=False, cost=100),
    ]
    order = [p["metadata"]["name"] for p in deletion_order(pods, {}, now)]
    assert order == ["unassigned", "pending", "unknown", "notready-restarts", "notready",
                     "costly-notready", "ready-new", "ready-old"]


def test_deletion_order_prefers_doubled_up_nodes_and_newer_pods():
    now = 1_000_000.0
    a = _pod("a", "n1", since=now - 100, created=now - 100)
    b = _pod("b", "n2", since=now - 100, created=now - 100)
    c = _pod("c", "n2", since=now - 100, created=now - 100)
    ranks = node_ranks([a, b, c], [a, b, c])
    assert ranks == {"a": 1, "b": 2, "c": 2}
    assert [p["metadata"]["name"] for p in deletion_order([a, b, c], ranks, now)][2] == "a"
    # Ages within the same power of two count as equal (logarithmic scale-down): uid decides.
    young = _pod("young", "n", since=now - 1000, created=now - 1000, uid="2")
    younger = _pod("younger", "n", since=now - 900, created=now - 900, uid="1")
    assert [p["metadata"]["name"] for p in deletion_order([young, younger], {}, now)] == \
        ["younger", "young"]
    # A pod without a creation time goes first.
    assert deletion_order([a, _pod("x", "n1", since=now - 100)], {}, now)[0]["metadata"][
        "name"] == "x"


def test_slow_start_batches_double_and_stop_at_the_first_failing_batch():
    calls = []

    def ok():
        calls.append(1)
    assert slow_start_batch(10, 1, ok) == (10, None)
    assert len(calls) == 10
    count = {"n": 0}
    lock = threading.Lock()

    def fail_on_fourth():
        with lock:
            count["n"] += 1
            n = count["n"]
        if n == 4:
            raise ApiError(403, "Forbidden", "no")
    done, error = slow_start_batch(10, 1, fail_on_fourth)
    # Batches 1, 2, then 4 (the fourth call fails): 6 successes, nothing more tried.
    assert (done, error.code, count["n"]) == (6, 403, 7)


def test_expectations_wait_for_every_creation_and_each_deletion_once(monkeypatch):
    from controllers.workloads import expectations as exp_module
    exp = exp_module.Expectations()
    assert exp.satisfied("ns/rs")            # nothing asked yet
    exp.expect_creations("ns/rs", 2)
    exp.creation_observed("ns/rs")
    assert not exp.satisfied("ns/rs")
    exp.creation_observed("ns/rs")
    assert exp.satisfied("ns/rs")
    exp.expect_deletions("ns/rs", ["ns/a", "ns/b"])
    exp.deletion_observed("ns/rs", "ns/a")
    exp.deletion_observed("ns/rs", "ns/a")   # the DELETE after the deletionTimestamp update
    assert not exp.satisfied("ns/rs")
    exp.deletion_observed("ns/rs", "ns/b")
    assert exp.satisfied("ns/rs")
    exp.expect_creations("ns/rs", 1)
    monkeypatch.setattr(exp_module, "EXPECTATIONS_TIMEOUT", -1.0)  # 5 minutes have passed
    assert exp.satisfied("ns/rs")
