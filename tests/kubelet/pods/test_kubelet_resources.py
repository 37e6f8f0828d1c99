"""Requests and limits end to end through the real API server and pykubelet: the QoS cgroup tree
with the pod-level limits and the OOM scores the processes get, a memory hog OOMKilled, pods
that do not fit refused at admission with nothing made, and memory-pressure eviction."""
from __future__ import annotations

import json
import os

import pytest

import cgroups
from kubelet import machine
from kubelet_testlib import pod_manifest, wait_for
from podsec_testlib import logs, run_to_end

pytestmark = pytest.mark.root


def _pod(name: str, node: str, command: str, restart_policy: str = "Always", **resources) -> dict:
    pod = pod_manifest(name, node, command, restart_policy=restart_policy, grace=1)
    if resources:
        pod["spec"]["containers"][0]["resources"] = resources
    return pod


def _cgroup_file(path: str, controller: str, name: str) -> str:
    directory = cgroups.open_cgroup(path).hierarchy_dirs()[controller]
    with open(os.path.join(directory, name)) as f:
        return f.read().strip()


def test_qos_tree_pod_limits_pids_limit_and_oom_scores(api, start_kubelet, namespace):
    kubelet = start_kubelet({"podPidsLimit": 64})
    cmd = "cat /proc/self/oom_score_adj; sleep 1000"
    # -997 unless this host cannot lower a score (no CAP_SYS_RESOURCE): then the kubelet's own
    lowest = machine.lowest_oom_score_adj()
    pods = {    # name: resources, QoS class, cgroup level, oom_score_adj (None: formula)
        "guaranteed": ({"limits": {"cpu": "250m", "memory": "64Mi"}}, "Guaranteed", "",
                       str(max(-997, lowest))),
        "burstable": ({"requests": {"cpu": "100m", "memory": "32Mi"},
                       "limits": {"memory": "128Mi"}}, "Burstable", "/burstable", None),
        "besteffort": ({}, "BestEffort", "/besteffort", "1000"),
    }
    for name, (resources, *_) in pods.items():
        api.create_pod(namespace, _pod(name, kubelet.node, cmd, **resources))
    kubepods = f"{kubelet.cgroup_root}/kubepods"
    for name, (_, qos_class, level, score) in pods.items():
        wait_for(lambda: api.running(namespace, name),
                 what=lambda: f"{name} running: {api.pod(namespace, name)['status']}")
        pod = api.pod(namespace, name)
        assert pod["status"]["qosClass"] == qos_class
        path = f"{kubepods}{level}/pod{pod['metadata']['uid']}"
        assert _cgroup_file(path, "pids", "pids.max") == "64"
        out = wait_for(lambda: logs(api, namespace, name), what=f"{name} logs")
        if score is None:   # Burstable: 1000 - 1000 * request / capacity, just below 1000
            assert 2 < int(out) < 1000
        else:
            assert out.split() == [score], name
    g = f"{kubepods}/pod{api.pod(namespace, 'guaranteed')['metadata']['uid']}"
    assert _cgroup_file(g, "memory", "memory.limit_in_bytes") == str(64 << 20)
    assert _cgroup_file(g, "cpu", "cpu.cfs_quota_us") == "25000"
    assert _cgroup_file(g, "cpu", "cpu.shares") == "256"
    b = f"{kubepods}/burstable/pod{api.pod(namespace, 'burstable')['metadata']['uid']}"
    assert _cgroup_file(b, "cpu", "cpu.shares") == "102"
    assert _cgroup_file(b, "cpu", "cpu.cfs_quota_us") == "-1"        # not every container
    assert _cgroup_file(b, "memory", "memory.limit_in_bytes") == str(128 << 20)
    assert _cgroup_file(f"{kubepods}/besteffort", "cpu", "cpu.shares") == "2"
    for name in pods:
        api.delete_pod(namespace, name)
    for name in pods:
        wait_for(lambda: api.pod(namespace, name) is None, what=f"{name} deleted")
    for level in ("", "/burstable", "/besteffort"):
        directory = cgroups.open_cgroup(kubepods + level).hierarchy_dirs()["memory"]
        assert not [n for n in os.listdir(directory) if n.startswith("pod")]


def test_memory_hog_is_oom_killed(api, kubelet, namespace):
    pod = run_to_end(api, namespace, kubelet.node, "hog",
                     "exec dd if=/dev/zero of=/dev/null bs=96M count=1",
                     container={"resources": {"limits": {"memory": "32Mi"}}})
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["reason"], terminated["exitCode"]) == ("OOMKilled", 137)
    assert pod["status"]["phase"] == "Failed"


def test_pods_that_do_not_fit_are_refused_with_nothing_made(api, kubelet, namespace):
    cpus = os.cpu_count() or 1
    cases = {"too-much-cpu": ({"requests": {"cpu": str(cpus * 4)}}, "OutOfcpu", "cpu"),
             "too-much-memory": ({"requests": {"memory": "4000Ti"}}, "OutOfmemory", "memory")}
    for name, (resources, _, _) in cases.items():
        api.create_pod(namespace, _pod(name, kubelet.node, "sleep 1000", **resources))
    for name, (_, reason, resource) in cases.items():
        pod = wait_for(lambda: (p := api.pod(namespace, name)) and
                       p["status"].get("phase") == "Failed" and p, what=f"{name} refused")
        assert pod["status"]["reason"] == reason
        assert pod["status"]["message"].startswith(
            f"Node didn't have enough resource: {resource}, requested: ")
        uid = pod["metadata"]["uid"]
        assert not kubelet.container_records(uid)
        kubepods = f"{kubelet.cgroup_root}/kubepods"
        for level in ("", "/burstable", "/besteffort"):
            directory = cgroups.open_cgroup(kubepods + level).hierarchy_dirs()["memory"]
            assert not os.path.exists(os.path.join(directory, f"pod{uid}"))
        assert not os.path.exists(os.path.join(kubelet.root, "pods", uid))


@pytest.mark.slow
def test_memory_pressure_evicts_best_effort_before_burstable_within_requests(
        api, start_kubelet, namespace, tmp_path):
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "static.json").write_text(json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "static", "namespace": namespace},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [
            {"name": "c", "image": "busybox:1.36", "imagePullPolicy": "Never",
             "command": ["sleep", "1000"]}]}}))
    # A threshold above what any machine has free: this node is always under memory pressure.
    kubelet = start_kubelet({"evictionHard": {"memory.available": "99.9%"},
                             "staticPodPath": str(manifests), "fileCheckFrequency": "1s"})
    static = f"static-{kubelet.node}"
    wait_for(lambda: api.running(namespace, static), what="the static pod running")
    api.create_pod(namespace, _pod("within", kubelet.node, "sleep 1000",
                                   requests={"memory": "8Mi"}))
    api.create_pod(namespace, _pod("besteffort", kubelet.node, "sleep 1000"))
    for name in ("within", "besteffort"):
        wait_for(lambda: api.running(namespace, name), what=f"{name} running")
    evicted = wait_for(lambda: (p := api.pod(namespace, "besteffort")) and
                       p["status"].get("reason") == "Evicted" and p, timeout=40,
                       what="besteffort evicted")
    assert evicted["status"]["phase"] == "Failed"
    assert evicted["status"]["message"].startswith(
        "The node was low on resource: memory. Threshold quantity: 99.9%, available: ")
    assert api.phase(namespace, "within") == "Running"
    wait_for(lambda: "terminated" in api.container_status(namespace, "besteffort")["state"],
             what="the evicted pod's container stopped")
    assert any(e["reason"] == "Evicted" for e in api.events(namespace, "besteffort"))
    node = api.get(f"/api/v1/nodes/{kubelet.node}")
    conditions = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert conditions["MemoryPressure"] == "True"
    # still under pressure: the next round takes the Burstable pod, never the static one
    wait_for(lambda: api.pod(namespace, "within")["status"].get("reason") == "Evicted",
             timeout=40, what="within evicted next")
    assert api.running(namespace, static)
