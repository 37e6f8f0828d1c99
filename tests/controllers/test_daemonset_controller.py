"""The DaemonSet controller against the real pyapiserver and its scheduler, with Node objects
the test writes (no kubelet: the test plays it, writing pod readiness and ending pods the
controller deletes): a pod per node the nodeSelector admits, bound by the scheduler through
the controller's node-name affinity; status counts; a RollingUpdate with maxUnavailable 1
replaces one pod at a time; OnDelete waits for the user; and kube's rules for which nodes a
daemon runs on (taints, daemon tolerations, node affinity) as pure functions."""
from __future__ import annotations

import uuid

import pytest

from controllers.workloads.daemonset import should_run
from controllers_testlib import delete_pods, running, wait_for
from kubeapi import timefmt
from kubeapi.status import ApiError

DSS = "/apis/apps/v1/namespaces/{ns}/daemonsets"
PODS = "/api/v1/namespaces/{ns}/pods"


@pytest.fixture
def controllers(client):
    with running(client, ["daemonset"]):
        yield


@pytest.fixture
def nodes(client, namespace):
    """Three Ready nodes labelled pool=<namespace>."""
    names = [f"ds-{uuid.uuid4().hex[:6]}" for _ in range(3)]
    for name in names:
        client.create("/api/v1/nodes", {"metadata": {"name": name, "labels": {
            "pool": namespace, "kubernetes.io/hostname": name}}})
        client.patch(f"/api/v1/nodes/{name}/status", {"status": {
            "conditions": [{"type": "Ready", "status": "True",
                            "lastHeartbeatTime": timefmt.rfc3339(),
                            "lastTransitionTime": timefmt.rfc3339()}],
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"}}})
    yield names
    for name in names:
        try:
            client.delete(f"/api/v1/nodes/{name}")
        except ApiError:
            pass


@pytest.fixture
def ns(client, namespace, nodes, controllers):
    yield namespace
    delete_pods(client, namespace)


def make_ds(client, ns: str, **spec) -> dict:
    return client.create(DSS.format(ns=ns), {
        "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
                 "template": {"metadata": {"labels": {"app": "agent"}},
                              "spec": {"nodeSelector": {"pool": ns},
                                       "containers": [{"name": "c", "image": "busybox"}]}},
                 **spec}})


def pods(client, ns: str) -> list[dict]:
    return [p for p in client.get(PODS.format(ns=ns))["items"]
            if not p["metadata"].get("deletionTimestamp")]


def play_kubelet(client, ns: str) -> None:
    """Ready for bound pods, and the end of pods being deleted."""
    for pod in client.get(PODS.format(ns=ns))["items"]:
        name = pod["metadata"]["name"]
        try:
            if pod["metadata"].get("deletionTimestamp"):
                client.delete(f"{PODS.format(ns=ns)}/{name}", {"gracePeriodSeconds": 0})
            elif pod["spec"].get("nodeName") and pod["status"].get("phase") != "Running":
                client.patch(f"{PODS.format(ns=ns)}/{name}/status", {"status": {
                    "phase": "Running", "conditions": [{
                        "type": "Ready", "status": "True",
                        "lastTransitionTime": timefmt.rfc3339()}]}})
        except ApiError as e:
            if e.code != 404:
                raise


def ds_status(client, ns: str) -> dict:
    return client.get(f"{DSS.format(ns=ns)}/agent").get("status") or {}


def test_a_pod_per_node_and_status(client, ns, nodes):
    make_ds(client, ns)
    bound = wait_for(lambda: sorted(p["spec"].get("nodeName") or "" for p in pods(client, ns))
                     == sorted(nodes) and pods(client, ns), what="a pod bound per node")
    for pod in bound:
        [term] = pod["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        assert term["matchFields"][0]["values"] == [pod["spec"]["nodeName"]]
        assert pod["metadata"]["labels"]["pod-template-generation"] == "1"
    status = wait_for(lambda: ds_status(client, ns).get("currentNumberScheduled") == 3 and
                      ds_status(client, ns), what="3 scheduled")
    assert status["desiredNumberScheduled"] == 3
    assert status["numberReady"] == 0 and status["numberUnavailable"] == 3
    play_kubelet(client, ns)
    status = wait_for(lambda: ds_status(client, ns).get("numberAvailable") == 3 and
                      ds_status(client, ns), what="3 available")
    assert status["numberReady"] == 3 and status["updatedNumberScheduled"] == 3
    assert "numberUnavailable" not in status
    # a node the selector no longer admits loses its pod
    client.patch(f"/api/v1/nodes/{nodes[0]}", {"metadata": {"labels": {"pool": "elsewhere"}}})
    wait_for(lambda: nodes[0] not in {p["spec"].get("nodeName") for p in pods(client, ns)},
             what="the pod off the relabelled node")
    wait_for(lambda: ds_status(client, ns).get("desiredNumberScheduled") == 2, what="desired 2")


def test_rolling_update_one_at_a_time(client, ns, nodes):
    make_ds(client, ns)
    wait_for(lambda: len([p for p in pods(client, ns) if p["spec"].get("nodeName")]) == 3,
             what="3 bound pods")
    play_kubelet(client, ns)
    wait_for(lambda: ds_status(client, ns).get("numberAvailable") == 3, what="3 available")
    old_hash = pods(client, ns)[0]["metadata"]["labels"]["controller-revision-hash"]
    client.patch(f"{DSS.format(ns=ns)}/agent", {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "busybox:2"}]}}}}, "strategic")
    most_deleting = [0]

    def step() -> list[dict] | None:
        """Plays the kubelet once; the updated running pods when all three are."""
        every = client.get(PODS.format(ns=ns))["items"]
        deleting = [p for p in every if p["metadata"].get("deletionTimestamp")]
        most_deleting[0] = max(most_deleting[0], len(deleting))
        fresh = [p for p in every if not p["metadata"].get("deletionTimestamp") and
                 p["metadata"]["labels"]["controller-revision-hash"] != old_hash and
                 p["status"].get("phase") == "Running"]
        if len(fresh) == 3:
            return fresh
        play_kubelet(client, ns)
        return None

    wait_for(step, timeout=60, interval=0.1, what="every pod updated")
    assert most_deleting[0] <= 1
    status = wait_for(lambda: ds_status(client, ns).get("updatedNumberScheduled") == 3 and
                      ds_status(client, ns), what="3 updated")
    assert status["observedGeneration"] == 2
    revisions = client.get(f"/apis/apps/v1/namespaces/{ns}/controllerrevisions")["items"]
    assert sorted(r["revision"] for r in revisions) == [1, 2]


def test_on_delete_waits_for_the_user(client, ns, nodes):
    make_ds(client, ns, updateStrategy={"type": "OnDelete"})
    wait_for(lambda: len([p for p in pods(client, ns) if p["spec"].get("nodeName")]) == 3,
             what="3 bound pods")
    play_kubelet(client, ns)
    old = {p["metadata"]["name"] for p in pods(client, ns)}
    client.patch(f"{DSS.format(ns=ns)}/agent", {"spec": {"template": {"metadata": {
        "annotations": {"v": "2"}}}}})
    wait_for(lambda: ds_status(client, ns).get("observedGeneration") == 2,
             what="the new generation seen")
    assert {p["metadata"]["name"] for p in pods(client, ns)} == old
    victim = sorted(old)[0]
    client.delete(f"{PODS.format(ns=ns)}/{victim}", {"gracePeriodSeconds": 0})
    new = wait_for(lambda: [p for p in pods(client, ns) if p["metadata"]["name"] not in old],
                   what="a replacement")
    assert new[0]["metadata"]["annotations"] == {"v": "2"}


def node(name: str = "n1", labels: dict | None = None, taints: list | None = None) -> dict:
    return {"metadata": {"name": name, "labels": labels or {}},
            "spec": {"taints": taints or []}}


def ds_with(**pod_spec) -> dict:
    return {"spec": {"template": {"spec": pod_spec}}}


def test_which_nodes_a_daemon_runs_on():
    assert should_run(ds_with(), node()) == (True, True)
    # kube's daemon tolerations cover node conditions
    for key, effect in (("node.kubernetes.io/not-ready", "NoExecute"),
                        ("node.kubernetes.io/unschedulable", "NoSchedule"),
                        ("node.kubernetes.io/disk-pressure", "NoSchedule")):
        assert should_run(ds_with(), node(taints=[{"key": key, "effect": effect}])) == \
            (True, True)
    # other taints: NoSchedule keeps a running pod, NoExecute does not
    assert should_run(ds_with(), node(taints=[{"key": "x", "effect": "NoSchedule"}])) == \
        (False, True)
    assert should_run(ds_with(), node(taints=[{"key": "x", "effect": "NoExecute"}])) == \
        (False, False)
    tolerant = ds_with(tolerations=[{"key": "x", "operator": "Exists"}])
    assert should_run(tolerant, node(taints=[{"key": "x", "effect": "NoExecute"}])) == \
        (True, True)
    assert should_run(ds_with(tolerations=[{"key": "x", "value": "a", "effect": "NoSchedule"}]),
                      node(taints=[{"key": "x", "value": "b", "effect": "NoSchedule"}]))[0] \
        is False
    # nodeSelector and required node affinity
    assert should_run(ds_with(nodeSelector={"disk": "ssd"}), node(labels={"disk": "hdd"})) == \
        (False, False)
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n9"]}]}]}}}
    assert should_run(ds_with(affinity=affinity), node(labels={"zone": "b"}))[0] is True
    assert should_run(ds_with(affinity=affinity), node(labels={"zone": "c"}))[0] is False
    assert should_run(ds_with(affinity=affinity), node("n9", labels={"zone": "c"}))[0] is True


def test_surge_starts_the_new_pod_beside_the_old(client, ns, nodes):
    make_ds(client, ns, updateStrategy={"type": "RollingUpdate", "rollingUpdate": {
        "maxSurge": 1, "maxUnavailable": 0}})
    wait_for(lambda: len([p for p in pods(client, ns) if p["spec"].get("nodeName")]) == 3,
             what="3 bound pods")
    play_kubelet(client, ns)
    wait_for(lambda: ds_status(client, ns).get("numberAvailable") == 3, what="3 available")
    old_hash = pods(client, ns)[0]["metadata"]["labels"]["controller-revision-hash"]
    client.patch(f"{DSS.format(ns=ns)}/agent", {"spec": {"template": {"metadata": {
        "annotations": {"v": "2"}}}}})
    problems: list[str] = []
    most_pods = [0]

    def step() -> bool:
        every = [p for p in client.get(PODS.format(ns=ns))["items"]
                 if not p["metadata"].get("deletionTimestamp")]
        most_pods[0] = max(most_pods[0], len(every))
        for name in nodes:
            here = [p for p in every if p["spec"].get("nodeName") == name]
            if not any(p["status"].get("phase") == "Running" for p in here):
                problems.append(f"no running pod on {name}")
        fresh = [p for p in every if p["metadata"]["labels"]["controller-revision-hash"] !=
                 old_hash and p["status"].get("phase") == "Running"]
        if len(fresh) == 3 and len(every) == 3:
            return True
        play_kubelet(client, ns)
        return False

    wait_for(step, timeout=60, interval=0.1, what="every pod replaced")
    assert not problems, problems
    assert most_pods[0] == 4  # one surge pod at a time


def test_revisions_are_numbered_from_the_api_when_the_informer_lags(client, namespace):
    """Two template changes before the informer has seen the first revision (CI's load once
    got that): the second revision is numbered after the first, not again 1, which kubectl's
    rollout history would have shown as one revision."""
    from controllers.workloads.history import History, revisions_path
    from kubeapi.informer import Informer

    ds = client.create(DSS.format(ns=namespace), {
        "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
                 "template": {"metadata": {"labels": {"app": "agent"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})
    # Never started: its copy stays empty, as one that has not caught up.
    history = History(client, Informer(client, revisions_path(namespace)))
    first, _ = history.current(ds, history.owned(ds))
    ds = client.patch(f"{DSS.format(ns=namespace)}/agent", {"spec": {"template": {"spec": {
        "containers": [{"name": "c", "image": "busybox:2"}]}}}}, "strategic")
    second, owned = history.current(ds, history.owned(ds))
    assert (first["revision"], second["revision"]) == (1, 2)
    assert [r["revision"] for r in owned] == [1, 2]
    # Back to the first template: its revision is renumbered, not copied.
    ds = client.patch(f"{DSS.format(ns=namespace)}/agent", {"spec": {"template": {"spec": {
        "containers": [{"name": "c", "image": "busybox"}]}}}}, "strategic")
    third, _ = history.current(ds, history.owned(ds))
    assert (third["metadata"]["name"], third["revision"]) == (first["metadata"]["name"], 3)
    listed = client.get(revisions_path(namespace))["items"]
    assert sorted(r["revision"] for r in listed) == [2, 3]


def test_kubectl_rollout_history_and_undo(client, ns, nodes, server):
    make_ds(client, ns, updateStrategy={"type": "OnDelete"})
    wait_for(lambda: len(client.get(f"/apis/apps/v1/namespaces/{ns}/controllerrevisions")
                         ["items"]) == 1, what="revision 1")
    client.patch(f"{DSS.format(ns=ns)}/agent", {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "busybox:2"}]}}}}, "strategic")
    wait_for(lambda: len(client.get(f"/apis/apps/v1/namespaces/{ns}/controllerrevisions")
                         ["items"]) == 2, what="revision 2")
    history = server.kubectl("rollout", "history", "-n", ns, "daemonset/agent").stdout
    assert "REVISION" in history and "\n1 " in history and "\n2 " in history
    server.kubectl("rollout", "undo", "-n", ns, "daemonset/agent")
    ds = client.get(f"{DSS.format(ns=ns)}/agent")
    assert ds["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox"

    def numbers() -> list[int]:
        return sorted(r["revision"] for r in client.get(
            f"/apis/apps/v1/namespaces/{ns}/controllerrevisions")["items"])

    wait_for(lambda: numbers() == [2, 3], what="revision 1 renumbered 3")
