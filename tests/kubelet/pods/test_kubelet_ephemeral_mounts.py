"""An ephemeral container's volumes, as the kubelet gives them: only the volumeMounts its own
spec lists. The ServiceAccount admission mounts the pod's kube-api-access volume into the
containers of a new pod, never into ephemeral containers added later, and kubectl debug copies
no mount: such a container has no token unless its spec mounts the pod's projected volume."""
from __future__ import annotations

import json

import pytest

from kubelet_testlib import IMAGE, pod_manifest, wait_for

pytestmark = pytest.mark.root

TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
LIST = f"ls {TOKEN_DIR} || echo no-token-dir"


def _logs_when_done(api, namespace: str, pod: str, name: str) -> str:
    def done() -> bool:
        found = api.pod(namespace, pod) or {}
        return any(s["name"] == name and "terminated" in s.get("state", {})
                   for s in found.get("status", {}).get("ephemeralContainerStatuses") or [])
    wait_for(done, what=f"ephemeral container {name} terminated")
    logs = api.kubectl("logs", "-n", namespace, pod, "-c", name)
    assert logs.returncode == 0, logs.stderr
    return logs.stdout


def test_an_ephemeral_container_mounts_what_its_spec_lists(api, kubelet, namespace):
    manifest = pod_manifest("mounts", kubelet.node, "exec sleep 4251", grace=1)
    api.create_pod(namespace, manifest)
    pod = wait_for(lambda: api.running(namespace, "mounts"), what="pod Running")
    token_volume = next(v["name"] for v in pod["spec"]["volumes"]
                        if v["name"].startswith("kube-api-access-"))
    assert any(m["mountPath"] == TOKEN_DIR
               for m in pod["spec"]["containers"][0]["volumeMounts"])

    # kubectl debug lists no volumeMounts: no token in it, as with the real kubelet.
    debug = api.kubectl("debug", "mounts", "-n", namespace, f"--image={IMAGE}",
                        "--container=plain", "--", "sh", "-c", LIST)
    assert debug.returncode == 0, debug.stderr
    assert "no-token-dir" in _logs_when_done(api, namespace, "mounts", "plain")

    # Through the subresource with the pod's projected volume listed: the token is there.
    ephemeral = {"name": "mounted", "image": IMAGE, "imagePullPolicy": "Never",
                 "command": ["sh", "-c", f"{LIST}; cat {TOKEN_DIR}/namespace"],
                 "volumeMounts": [{"name": token_volume, "mountPath": TOKEN_DIR,
                                   "readOnly": True}]}
    current = json.loads(api.kubectl("get", "pod", "mounts", "-n", namespace, "-o",
                                     "json").stdout)
    patch = {"spec": {"ephemeralContainers":
                      current["spec"]["ephemeralContainers"] + [ephemeral]}}
    patched = api.kubectl("patch", "pod", "mounts", "-n", namespace,
                          "--subresource=ephemeralcontainers", "--type=strategic",
                          "-p", json.dumps(patch))
    assert patched.returncode == 0, patched.stderr
    logs = _logs_when_done(api, namespace, "mounts", "mounted")
    assert "token" in logs.split() and "ca.crt" in logs.split(), logs
    assert logs.rstrip().endswith(namespace), logs
