"""metadata.generation as kube-apiserver 1.35 gives it: only the kinds whose strategy tracks it
(the workloads, pods, EndpointSlices) carry one, from 1 on create, one more for each update that
changes their spec (an EndpointSlice: its content or labels). The table below was read from the
real kube-apiserver (../shared/refbin); the slow test reads it again and compares."""
from __future__ import annotations

import json
import uuid

import pytest

from testlib.kube_reference import kube_apiserver

POD_SPEC = {"containers": [{"name": "c", "image": "busybox"}]}
JOB_POD = {"spec": {**POD_SPEC, "restartPolicy": "Never"}}
SELECTOR = {"matchLabels": {"app": "g"}}
TEMPLATE = {"metadata": {"labels": {"app": "g"}}, "spec": POD_SPEC}
CLUSTER_SCOPED = {"Namespace", "Node", "PersistentVolume", "RuntimeClass", "CSIDriver",
                  "CSINode", "StorageClass"}

# kind: (apiVersion, the rest of the object, a merge patch that changes more than metadata).
KINDS: dict[str, tuple[str, dict, dict]] = {
    "ConfigMap": ("v1", {"data": {"a": "b"}}, {"data": {"a": "c"}}),
    "Endpoints": ("v1", {}, {"subsets": [{"addresses": [{"ip": "198.18.0.9"}],
                                          "ports": [{"port": 80}]}]}),
    "Event": ("v1", {"involvedObject": {"kind": "Pod", "name": "x"}, "reason": "R",
                     "message": "m", "type": "Normal"}, {"message": "n"}),
    "Namespace": ("v1", {"spec": {"finalizers": ["kubernetes"]}}, {"metadata": {}}),
    "Node": ("v1", {"spec": {"podCIDR": "198.18.7.0/24"}}, {"spec": {"unschedulable": True}}),
    "PersistentVolumeClaim": ("v1", {"spec": {"accessModes": ["ReadWriteOnce"], "resources": {
        "requests": {"storage": "1Gi"}}}}, {"metadata": {"annotations": {"a": "b"}}}),
    "PersistentVolume": ("v1", {"spec": {"capacity": {"storage": "1Gi"},
                                         "accessModes": ["ReadWriteOnce"],
                                         "hostPath": {"path": "/tmp/generation-pv"}}},
                         {"spec": {"capacity": {"storage": "2Gi"}}}),
    "Pod": ("v1", {"spec": POD_SPEC}, {"spec": {"activeDeadlineSeconds": 100}}),
    "Secret": ("v1", {"data": {}}, {"stringData": {"k": "v"}}),
    "ServiceAccount": ("v1", {}, {"automountServiceAccountToken": False}),
    "Service": ("v1", {"spec": {"ports": [{"port": 80}]}},
                {"spec": {"ports": [{"port": 81}]}}),
    "ControllerRevision": ("apps/v1", {"revision": 1, "data": {}}, {"revision": 2}),
    "DaemonSet": ("apps/v1", {"spec": {"selector": SELECTOR, "template": TEMPLATE}},
                  {"spec": {"minReadySeconds": 5}}),
    "Deployment": ("apps/v1", {"spec": {"replicas": 0, "selector": SELECTOR,
                                        "template": TEMPLATE}}, {"spec": {"replicas": 0,
                                                                          "paused": True}}),
    "ReplicaSet": ("apps/v1", {"spec": {"replicas": 0, "selector": SELECTOR,
                                        "template": TEMPLATE}}, {"spec": {"minReadySeconds": 5}}),
    "StatefulSet": ("apps/v1", {"spec": {"replicas": 0, "serviceName": "s",
                                         "selector": SELECTOR, "template": TEMPLATE}},
                    {"spec": {"minReadySeconds": 5}}),
    "CronJob": ("batch/v1", {"spec": {"schedule": "* * * * *", "suspend": True,
                                      "jobTemplate": {"spec": {"template": JOB_POD}}}},
                {"spec": {"schedule": "*/2 * * * *"}}),
    "Job": ("batch/v1", {"spec": {"suspend": True, "template": JOB_POD}},
            {"spec": {"activeDeadlineSeconds": 100}}),
    "Lease": ("coordination.k8s.io/v1", {"spec": {"holderIdentity": "h"}},
              {"spec": {"holderIdentity": "i"}}),
    "EndpointSlice": ("discovery.k8s.io/v1", {"addressType": "IPv4", "endpoints": []},
                      {"ports": [{"name": "a", "port": 80}]}),
    "RuntimeClass": ("node.k8s.io/v1", {"handler": "h"}, {"metadata": {}}),
    "PodDisruptionBudget": ("policy/v1", {"spec": {"minAvailable": 1, "selector": SELECTOR}},
                            {"spec": {"minAvailable": 2}}),
    "CSIDriver": ("storage.k8s.io/v1", {"spec": {}}, {"metadata": {}}),
    "CSINode": ("storage.k8s.io/v1", {"spec": {"drivers": []}}, {"metadata": {}}),
    "StorageClass": ("storage.k8s.io/v1", {"provisioner": "p"}, {"parameters": None}),
}

# (after create, after a label, after the patch), as kube-apiserver 1.35 answered.
TRACKED = {"Pod": (1, 1, 2), "EndpointSlice": (1, 2, 3)}
for _kind in ("DaemonSet", "Deployment", "ReplicaSet", "StatefulSet", "CronJob", "Job",
              "PodDisruptionBudget"):
    TRACKED[_kind] = (1, 1, 2)
EXPECTED = {kind: TRACKED.get(kind, (None, None, None)) for kind in KINDS}


def generations(kubectl, namespace: str) -> dict[str, tuple]:
    """Each kind created, labelled and patched through kubectl: its generation after each."""
    out = {}
    suffix = uuid.uuid4().hex[:6]
    for kind, (api_version, rest, patch) in KINDS.items():
        name = f"gen-{kind.lower()}-{suffix}"
        meta: dict = {"name": name}
        if kind not in CLUSTER_SCOPED:
            meta["namespace"] = namespace
        if kind == "CSINode":  # a CSINode is named after its Node
            meta["name"] = name = f"gen-node-{suffix}"
        obj = {"apiVersion": api_version, "kind": kind, "metadata": meta, **rest}
        if kind == "Event":
            obj["involvedObject"] = {**obj["involvedObject"], "namespace": namespace}
        manifest = json.dumps(obj)
        seen = []
        # Each read back by a get: kubectl label -o prints what it read before its patch.
        for step in (("create", "-f", "-"), ("label", "-f", "-", "probe=1"),
                     ("patch", "-f", "-", "--type=merge", "-p", json.dumps(patch))):
            kubectl(*step, input=manifest)
            got = json.loads(kubectl("get", "-f", "-", "-o", "json", input=manifest).stdout)
            got = got["items"][0] if got["kind"] == "List" else got
            seen.append(got["metadata"].get("generation"))
        out[kind] = tuple(seen)
    return out


def _checked(kubectl):
    def run(*args: str, input: str | None = None):
        proc = kubectl(*args, input=input)
        assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
        return proc
    return run


def test_pyapiserver_gives_generation_to_the_kinds_kube_does(server, namespace):
    got = generations(_checked(lambda *a, input=None: server.kubectl(*a, check=False,
                                                                      input=input)), namespace)
    assert got == EXPECTED
    for kind in CLUSTER_SCOPED:
        server.kubectl("delete", kind.lower(), "-l", "probe=1", "--wait=false", check=False)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_table_is_what_kube_apiserver_answers():
    with kube_apiserver("generation-node") as cp:
        kubectl = _checked(cp.kubectl)
        # No controller manager here: the namespace's default ServiceAccount by hand.
        kubectl("create", "namespace", "generation")
        kubectl("create", "serviceaccount", "-n", "generation", "default")
        assert generations(kubectl, "generation") == EXPECTED
