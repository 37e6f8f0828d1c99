"""KubeletConfiguration fields the README names, each proven end to end with a real kubelet and
API server: the node Lease renewed, seccompDefault, allowedUnsafeSysctls (both ways), maxPods
admission, and a static pod written as YAML."""
from __future__ import annotations

import os

import pytest

from kubelet_testlib import IMAGE, pod_manifest, wait_for

pytestmark = pytest.mark.root


def _lease(api, node: str) -> dict | None:
    return api.get(f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}")


def _logs(api, namespace: str, name: str) -> str:
    return api.kubectl("logs", "-n", namespace, name).stdout


def test_lease_is_renewed(api, start_kubelet):
    # renewed every duration / 4: 1 s here
    kubelet = start_kubelet({"nodeLeaseDurationSeconds": 4})
    first = wait_for(lambda: _lease(api, kubelet.node), what="the node's Lease")
    assert first["spec"]["holderIdentity"] == kubelet.node
    assert first["spec"]["leaseDurationSeconds"] == 4
    assert first["metadata"]["ownerReferences"][0]["kind"] == "Node"
    renewed = wait_for(lambda: (lease := _lease(api, kubelet.node)) and
                       lease["spec"]["renewTime"] > first["spec"]["renewTime"] and lease,
                       timeout=30, what="a later renewTime")
    assert int(renewed["metadata"]["resourceVersion"]) > \
        int(first["metadata"]["resourceVersion"])


def test_seccomp_default_filters_pods_that_name_no_profile(api, start_kubelet, namespace):
    plain = start_kubelet()
    filtered = start_kubelet({"seccompDefault": True})
    command = "grep Seccomp: /proc/self/status; exec sleep 1000"
    api.create_pod(namespace, pod_manifest("plain", plain.node, command))
    api.create_pod(namespace, pod_manifest("filtered", filtered.node, command))
    unconfined = pod_manifest("unconfined", filtered.node, command)
    unconfined["spec"]["securityContext"] = {"seccompProfile": {"type": "Unconfined"}}
    api.create_pod(namespace, unconfined)
    # Seccomp: 2 is a filter in force, 0 none.
    assert wait_for(lambda: _logs(api, namespace, "filtered")).split() == ["Seccomp:", "2"]
    assert wait_for(lambda: _logs(api, namespace, "plain")).split() == ["Seccomp:", "0"]
    assert wait_for(lambda: _logs(api, namespace, "unconfined")).split() == ["Seccomp:", "0"]


def test_allowed_unsafe_sysctls(api, start_kubelet, namespace):
    allowing = start_kubelet({"allowedUnsafeSysctls": ["kernel.msg*"]})
    strict = start_kubelet()
    for name, node in (("allowed", allowing.node), ("refused", strict.node)):
        manifest = pod_manifest(name, node, "cat /proc/sys/kernel/msgmax; exec sleep 1000")
        manifest["spec"]["securityContext"] = {"sysctls": [{"name": "kernel.msgmax",
                                                            "value": "65537"}]}
        api.create_pod(namespace, manifest)
    assert wait_for(lambda: _logs(api, namespace, "allowed")) == "65537\n"
    refused = wait_for(lambda: api.phase(namespace, "refused") == "Failed" and
                       api.pod(namespace, "refused"), what="the refused pod Failed")
    assert refused["status"]["reason"] == "SysctlForbidden"
    assert "kernel.msgmax" in refused["status"]["message"]
    # the host's own value is untouched by either
    with open("/proc/sys/kernel/msgmax") as f:
        assert f.read() != "65537\n"


def test_max_pods_refuses_the_pod_beyond(api, start_kubelet, namespace):
    kubelet = start_kubelet({"maxPods": 1})
    api.create_pod(namespace, pod_manifest("first", kubelet.node, "exec sleep 1000"))
    wait_for(lambda: api.running(namespace, "first"), what="the first pod Running")
    api.create_pod(namespace, pod_manifest("second", kubelet.node, "exec sleep 1000"))
    second = wait_for(lambda: api.phase(namespace, "second") == "Failed" and
                      api.pod(namespace, "second"), what="the second pod refused")
    assert second["status"]["reason"] == "OutOfpods"
    assert second["status"]["message"].startswith("Node didn't have enough resource: pods")
    assert api.running(namespace, "first")


def test_static_pod_from_yaml(api, start_kubelet, tmp_path):
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "web.yaml").write_text(f"""\
# a comment, as hand-written manifests have
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: default
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: {IMAGE}
    imagePullPolicy: Never
    command: [sh, -c, 'echo from yaml; exec sleep 1000']
""")
    kubelet = start_kubelet({"staticPodPath": str(manifests), "fileCheckFrequency": "1s"})
    mirror = f"web-{kubelet.node}"
    wait_for(lambda: api.running("default", mirror), timeout=60, what="the mirror pod Running")
    assert wait_for(lambda: _logs(api, "default", mirror)) == "from yaml\n"
    os.unlink(manifests / "web.yaml")
    wait_for(lambda: api.pod("default", mirror) is None, timeout=60,
             what="the mirror pod gone with its manifest")
