"""The scheduler loop, and the pods/log proxy's answers when no kubelet can serve."""
from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from apiserver_testlib import wait_for


def ready_node(name: str, cpu: str = "2", memory: str = "4Gi", labels: dict | None = None,
               taints: list | None = None, port: int = 10250) -> dict:
    return {"metadata": {"name": name, "labels": labels or {}},
            "spec": {"taints": taints or []},
            "status": {"capacity": {"cpu": cpu, "memory": memory, "pods": "110"},
                       "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True",
                                       "reason": "KubeletReady"}],
                       "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}


def pod(name: str, cpu: str = "100m", **spec) -> dict:
    return {"metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                                     "resources": {"requests": {"cpu": cpu}}}], **spec}}


def events_for(core, ns: str, name: str) -> list:
    return core.list_namespaced_event(
        ns, field_selector=f"involvedObject.name={name},involvedObject.kind=Pod").items


def test_scheduler_binds_to_fitting_ready_node_or_records_failure(own_server):
    core = client.CoreV1Api(own_server.client())
    core.create_node(ready_node("small", cpu="1", labels={"disk": "ssd"}))
    core.create_node(ready_node("tainted", cpu="8",
                                taints=[{"key": "dedicated", "value": "gpu",
                                         "effect": "NoSchedule"}]))
    not_ready = ready_node("down", cpu="64")
    not_ready["status"]["conditions"][0]["status"] = "False"
    core.create_node(not_ready)

    core.create_namespaced_pod("default", pod("fits", cpu="500m"))
    core.create_namespaced_pod("default", pod("selector", nodeSelector={"disk": "ssd"}))
    core.create_namespaced_pod("default", pod("tolerates", cpu="4", tolerations=[
        {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]))
    core.create_namespaced_pod("default", pod("too-big", cpu="16"))

    def node_of(name):
        return core.read_namespaced_pod(name, "default").spec.node_name
    assert wait_for(lambda: node_of("fits")) == "small"
    assert wait_for(lambda: node_of("selector")) == "small"
    assert wait_for(lambda: node_of("tolerates")) == "tainted"
    scheduled = wait_for(lambda: [e for e in events_for(core, "default", "fits")
                                  if e.reason == "Scheduled"])
    assert "Successfully assigned default/fits to small" in scheduled[0].message

    failed = wait_for(lambda: [e for e in events_for(core, "default", "too-big")
                               if e.reason == "FailedScheduling"])
    assert failed[0].type == "Warning"
    # kube-scheduler filters on taints, not on Ready: the NotReady node counts through the
    # not-ready taint its condition stands for (no node lifecycle controller runs here).
    assert failed[0].message == ("0/3 nodes are available: 1 Insufficient cpu, "
                                 "1 node(s) had untolerated taint {dedicated: gpu}, "
                                 "1 node(s) had untolerated taint "
                                 "{node.kubernetes.io/not-ready: }.")
    big = core.read_namespaced_pod("too-big", "default")
    assert big.spec.node_name is None
    cond = [c for c in big.status.conditions if c.type == "PodScheduled"][0]
    assert (cond.status, cond.reason) == ("False", "Unschedulable")
    # More room on a node: the pending pod is retried and bound.
    core.patch_node_status("down", {"status": {"conditions": [
        {"type": "Ready", "status": "True", "reason": "KubeletReady"}]}})
    assert wait_for(lambda: node_of("too-big")) == "down"
    core.api_client.close()


def test_room_freed_or_taint_tolerated_schedules_without_waiting_for_the_retry(own_server):
    """A parked pod moves on the event that could make it fit (a pod deleted), well before
    the 30 s retry; a pod that tolerates not-ready goes to a NotReady node."""
    core = client.CoreV1Api(own_server.client())
    core.create_node(ready_node("only", cpu="1"))
    core.create_namespaced_pod("default", pod("first", cpu="800m"))

    def node_of(name):
        return core.read_namespaced_pod(name, "default").spec.node_name
    assert wait_for(lambda: node_of("first")) == "only"
    core.create_namespaced_pod("default", pod("second", cpu="800m"))
    wait_for(lambda: [e for e in events_for(core, "default", "second")
                      if e.reason == "FailedScheduling"])
    core.delete_namespaced_pod("first", "default", grace_period_seconds=0)
    assert wait_for(lambda: node_of("second"), timeout=15) == "only"

    down = ready_node("down")
    down["status"]["conditions"][0]["status"] = "False"
    core.create_node(down)
    core.create_namespaced_pod("default", pod("tolerant", cpu="800m", tolerations=[
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists"}]))
    assert wait_for(lambda: node_of("tolerant")) == "down"
    core.api_client.close()


def test_pod_logs_name_a_missing_node_or_an_unreachable_kubelet(core, namespace):
    """The proxy's error paths. Its happy path (the query forwarded, the kubelet's text back) runs
    against a real pykubelet in tests/kubelet (kubectl logs --tail --timestamps)."""
    node = f"logs-{namespace}"
    spec = ready_node(node, port=1)  # nothing listens on port 1
    spec["spec"]["unschedulable"] = True  # keep other tests' pods off it
    core.create_node(spec)
    try:
        core.create_namespaced_pod(namespace, pod("p", nodeName=node))
        with pytest.raises(ApiException) as e:
            core.read_namespaced_pod_log("p", namespace, tail_lines=2)
        assert e.value.status == 503
        assert "unable to reach the kubelet" in json.loads(e.value.body)["message"]

        core.create_namespaced_pod(namespace, pod("lost", nodeName="no-such-node"))
        with pytest.raises(ApiException) as e:
            core.read_namespaced_pod_log("lost", namespace)
        assert e.value.status == 404
        assert json.loads(e.value.body)["message"] == 'nodes "no-such-node" not found'
    finally:
        core.delete_node(node)
