"""The StatefulSet controller against the real pyapiserver, no kubelet (the test writes the
pods' phase and readiness; unscheduled pods go at once when deleted): OrderedReady creates
web-0, then web-1 only once web-0 is Running and Ready; Parallel creates all at once;
volumeClaimTemplates give each pod a claim `<template>-<pod>` that survives it; a template
change rolls from the highest ordinal down to the partition, with currentRevision and
updateRevision in status and a ControllerRevision per template; scaling down removes the
highest ordinal first."""
from __future__ import annotations

import pytest

from controllers_testlib import delete_pods, running, wait_for
from kubeapi import timefmt
from kubeapi.status import ApiError

SETS = "/apis/apps/v1/namespaces/{ns}/statefulsets"
PODS = "/api/v1/namespaces/{ns}/pods"
CLAIMS = "/api/v1/namespaces/{ns}/persistentvolumeclaims"


@pytest.fixture
def controllers(client):
    with running(client, ["statefulset", "garbagecollector"]):
        yield


@pytest.fixture
def ns(client, namespace, controllers):
    yield namespace
    delete_pods(client, namespace)


def make_set(client, ns: str, replicas: int, **spec) -> dict:
    return client.create(SETS.format(ns=ns), {
        "metadata": {"name": "web"},
        "spec": {"replicas": replicas, "serviceName": "web",
                 "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
                 **spec}})


def names(client, ns: str) -> list[str]:
    return sorted(p["metadata"]["name"] for p in client.get(PODS.format(ns=ns))["items"]
                  if not p["metadata"].get("deletionTimestamp"))


def pod(client, ns: str, name: str) -> dict:
    return client.get(f"{PODS.format(ns=ns)}/{name}")


def ready(client, ns: str, name: str) -> None:
    client.patch(f"{PODS.format(ns=ns)}/{name}/status", {"status": {
        "phase": "Running", "conditions": [{"type": "Ready", "status": "True",
                                            "lastTransitionTime": timefmt.rfc3339()}]}})


def sts_status(client, ns: str) -> dict:
    return client.get(f"{SETS.format(ns=ns)}/web").get("status") or {}


def bring_up(client, ns: str, count: int) -> None:
    for i in range(count):
        wait_for(lambda: f"web-{i}" in names(client, ns), what=f"web-{i}")
        ready(client, ns, f"web-{i}")


def test_ordered_ready_creation_and_claims(client, ns):
    make_set(client, ns, 3, volumeClaimTemplates=[{"metadata": {"name": "data"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}}}])
    wait_for(lambda: names(client, ns) == ["web-0"], what="web-0 alone")
    claims = client.get(CLAIMS.format(ns=ns))["items"]
    assert [c["metadata"]["name"] for c in claims] == ["data-web-0"]
    assert claims[0]["metadata"]["labels"] == {"app": "web"}
    assert "ownerReferences" not in claims[0]["metadata"]
    first = pod(client, ns, "web-0")
    assert first["spec"]["volumes"][0] == {"name": "data", "persistentVolumeClaim": {
        "claimName": "data-web-0"}}
    assert first["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "web-0"
    assert first["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == "0"
    assert first["spec"]["hostname"] == "web-0" and first["spec"]["subdomain"] == "web"
    # web-1 waits for web-0 to be Ready
    assert names(client, ns) == ["web-0"]
    bring_up(client, ns, 3)
    status = wait_for(lambda: sts_status(client, ns).get("readyReplicas") == 3 and
                      sts_status(client, ns), what="3 ready")
    assert status["replicas"] == 3 and status["currentReplicas"] == 3
    assert status["currentRevision"] == status["updateRevision"]
    assert status["currentRevision"] == first["metadata"]["labels"]["controller-revision-hash"]
    # a deleted pod comes back under its name; its claim stayed
    old_uid = pod(client, ns, "web-1")["metadata"]["uid"]
    client.delete(f"{PODS.format(ns=ns)}/web-1", {"gracePeriodSeconds": 0})
    wait_for(lambda: "web-1" in names(client, ns) and
             pod(client, ns, "web-1")["metadata"]["uid"] != old_uid, what="web-1 again")
    assert len(client.get(CLAIMS.format(ns=ns))["items"]) == 3
    # scaling down goes from the highest ordinal
    ready(client, ns, "web-1")
    client.patch(f"{SETS.format(ns=ns)}/web", {"spec": {"replicas": 1}})
    wait_for(lambda: names(client, ns) == ["web-0"], what="web-0 alone again")
    assert len(client.get(CLAIMS.format(ns=ns))["items"]) == 3


def test_parallel_creates_all_at_once(client, ns):
    make_set(client, ns, 3, podManagementPolicy="Parallel")
    wait_for(lambda: names(client, ns) == ["web-0", "web-1", "web-2"], what="three pods")


def test_rolling_update_from_the_highest_ordinal_to_the_partition(client, ns):
    make_set(client, ns, 3, updateStrategy={"type": "RollingUpdate",
                                            "rollingUpdate": {"partition": 1}})
    bring_up(client, ns, 3)
    wait_for(lambda: sts_status(client, ns).get("readyReplicas") == 3, what="3 ready")
    old = sts_status(client, ns)["currentRevision"]
    client.patch(f"{SETS.format(ns=ns)}/web", {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "busybox:2"}]}}}}, "strategic")

    def revision(name: str) -> str:
        try:
            found = pod(client, ns, name)
        except ApiError as e:
            assert e.code == 404
            return ""
        return found["metadata"]["labels"]["controller-revision-hash"]

    new = wait_for(lambda: sts_status(client, ns).get("updateRevision") != old and
                   sts_status(client, ns)["updateRevision"], what="a new revision")
    wait_for(lambda: revision("web-2") == new,
             what="web-2 updated first")
    assert revision("web-1") == old and revision("web-0") == old
    ready(client, ns, "web-2")
    wait_for(lambda: revision("web-1") == new,
             what="web-1 updated")
    ready(client, ns, "web-1")
    status = wait_for(lambda: sts_status(client, ns).get("updatedReplicas") == 2 and
                      sts_status(client, ns), what="2 updated")
    # the partition keeps web-0 on the old revision
    assert revision("web-0") == old and status["currentRevision"] == old
    revisions = client.get(f"/apis/apps/v1/namespaces/{ns}/controllerrevisions")["items"]
    assert sorted((r["metadata"]["name"], r["revision"]) for r in revisions) == \
        sorted([(old, 1), (new, 2)])
    client.patch(f"{SETS.format(ns=ns)}/web",
                 {"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}})
    wait_for(lambda: revision("web-0") == new,
             what="web-0 updated")
    ready(client, ns, "web-0")
    status = wait_for(lambda: sts_status(client, ns).get("currentRevision") == new and
                      sts_status(client, ns), what="the update current")
    assert status["currentReplicas"] == 3 and status["updatedReplicas"] == 3


def test_claims_deleted_on_scale_down_when_the_policy_says_so(client, ns):
    make_set(client, ns, 2, podManagementPolicy="Parallel",
             persistentVolumeClaimRetentionPolicy={"whenScaled": "Delete",
                                                   "whenDeleted": "Retain"},
             volumeClaimTemplates=[{"metadata": {"name": "data"}, "spec": {
                 "accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "1Mi"}}}}])

    def claims() -> list[str]:
        return sorted(c["metadata"]["name"] for c in client.get(CLAIMS.format(ns=ns))["items"]
                      if not c["metadata"].get("deletionTimestamp"))

    wait_for(lambda: claims() == ["data-web-0", "data-web-1"], what="two claims")
    bring_up(client, ns, 2)
    client.patch(f"{SETS.format(ns=ns)}/web", {"spec": {"replicas": 1}})
    wait_for(lambda: names(client, ns) == ["web-0"], what="web-1 gone")
    wait_for(lambda: claims() == ["data-web-0"], what="web-1's claim deleted")


def test_kubectl_rollout_history_and_undo(client, ns, server):
    make_set(client, ns, 1, updateStrategy={"type": "OnDelete"})
    wait_for(lambda: sts_status(client, ns).get("currentRevision"), what="revision 1")
    client.patch(f"{SETS.format(ns=ns)}/web", {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "busybox:2"}]}}}}, "strategic")
    wait_for(lambda: len(client.get(f"/apis/apps/v1/namespaces/{ns}/controllerrevisions")
                         ["items"]) == 2, what="two revisions")
    history = server.kubectl("rollout", "history", "-n", ns, "statefulset/web").stdout
    assert "\n1 " in history and "\n2 " in history
    server.kubectl("rollout", "undo", "-n", ns, "statefulset/web")
    sts = client.get(f"{SETS.format(ns=ns)}/web")
    assert sts["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox"
    assert sts_status(client, ns).get("availableReplicas", 0) == 0
