"""The upstream kubelet (v1.35, ../shared/refbin/kubelet.xz) on pycontainer-cri through
--container-runtime-endpoint (issue 24), a node of pyapiserver and, to compare, of the real
kube-apiserver and etcd (testlib/control_plane), run as a user runs it: it writes its Node,
Lease, Events and CSINode in protobuf (its default contentType). The node goes Ready with
pycontainer as its runtime (on pyapiserver: its CSINode created, CSIDrivers and RuntimeClasses
listed), its Lease is there, a pod reaches Running with an IP of the runtime's network and the
kubelet's Events about it, and kubectl logs and kubectl exec (through
the API server's streaming proxy, the kubelet and pycontainer-cri's streaming server) work; a
deleted pod's sandbox is gone from the runtime. Everything the kubelet made is removed after
(upstream_kubelet_testlib)."""
from __future__ import annotations

import ipaddress
import json
import uuid

import pytest

from cri_testlib import wait_for
from pyapiserver_plane_testlib import PyControlPlane
from testlib.control_plane import ControlPlane
from testlib.cri_daemon import IMAGE, CriDaemon
from upstream_kubelet_testlib import UpstreamKubelet

pytestmark = [pytest.mark.root, pytest.mark.slow]


class Node:
    def __init__(self, control: ControlPlane | PyControlPlane, daemon: CriDaemon,
                 kubelet: UpstreamKubelet):
        self.control, self.daemon, self.kubelet = control, daemon, kubelet

    def kubectl(self, *args: str, input: str | None = None):
        return self.control.kubectl(*args, input=input)

    def get(self, *args: str) -> dict | None:
        p = self.kubectl("get", *args, "-o", "json")
        return json.loads(p.stdout) if p.returncode == 0 else None

    def describe(self, what: str):
        return lambda: (f"{what}; kubelet log:\n{self.kubelet.log()[-4000:]}\n"
                        f"pycontainer-cri log:\n{self.daemon.log()[-2000:]}")


@pytest.fixture(scope="module", params=["pyapiserver", "kube-apiserver"])
def node(request, cri_image_root):
    name = f"uk-{uuid.uuid4().hex[:8]}"
    control = PyControlPlane(name) if request.param == "pyapiserver" else ControlPlane(name)
    daemon = CriDaemon(cri_image_root)
    kubelet: UpstreamKubelet | None = None
    try:
        control.start()
        daemon.start()
        client_ca = control.ca_cert if isinstance(control, PyControlPlane) \
            else control.pki.ca_cert
        kubelet = UpstreamKubelet(name, control.node_kubeconfig, client_ca, daemon.endpoint)
        kubelet.start()
        yield Node(control, daemon, kubelet)
    finally:
        try:
            if kubelet is not None:
                kubelet.stop()
            if daemon.proc is not None and daemon.proc.poll() is None:
                # what the kubelet left running: through the CRI, as a node drain would
                for pod in daemon.crictl("pods", "-q", check=False).stdout.split():
                    daemon.crictl("stopp", pod, check=False)
                    daemon.crictl("rmp", "-f", pod, check=False)
        finally:
            try:
                daemon.cleanup()
            finally:
                try:
                    if kubelet is not None:
                        kubelet.cleanup()
                finally:
                    control.cleanup()


def _ready(node: Node) -> dict | None:
    found = node.get("node", node.kubelet.node)
    conditions = {c["type"]: c["status"] for c in
                  ((found or {}).get("status") or {}).get("conditions") or []}
    return found if conditions.get("Ready") == "True" else None


def _event_reasons(node: Node, name: str) -> set[str]:
    found = node.get("events", "--field-selector", f"involvedObject.name={name}")
    return {e.get("reason") for e in (found or {}).get("items") or []
            if (e.get("source") or {}).get("component") == "kubelet"}


def _running(node: Node, name: str) -> dict | None:
    pod = node.get("pod", name)
    status = (pod or {}).get("status") or {}
    if status.get("phase") == "Running" and all(
            "running" in s["state"] for s in status.get("containerStatuses") or []):
        return pod
    return None


def test_node_ready_pod_running_with_logs_and_exec(node):
    ready = wait_for(lambda: _ready(node), 90, interval=0.5,
                     what=node.describe("the node Ready"))
    assert ready["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("pycontainer://")
    if isinstance(node.control, PyControlPlane):
        csinode = node.get("csinode", node.kubelet.node)
        assert csinode and csinode["metadata"]["ownerReferences"][0]["uid"] == \
            ready["metadata"]["uid"], csinode
    # No controller manager on kube-apiserver: the account its ServiceAccount admission wants
    # is ours to make (pyapiserver makes it with the namespace).
    made = node.kubectl("create", "serviceaccount", "default")
    assert made.returncode == 0 or "already exists" in made.stderr, made.stderr
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hello"}, "spec": {
        "nodeName": node.kubelet.node, "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "c", "image": IMAGE, "imagePullPolicy": "Never",
                        "command": ["sh", "-c", "echo hello from $(hostname); sleep 3600"]}]}}
    created = node.kubectl("create", "-f", "-", input=json.dumps(pod))
    assert created.returncode == 0, created.stderr
    running = wait_for(lambda: _running(node, "hello"), 90, interval=0.5,
                       what=node.describe(f"pod hello Running: {node.get('pod', 'hello')}"))
    ip = running["status"]["podIP"]
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(node.daemon.subnet)
    lease = wait_for(lambda: node.get("lease", "-n", "kube-node-lease", node.kubelet.node), 30,
                     interval=0.5, what=node.describe("the node's Lease"))
    assert lease["spec"]["holderIdentity"] == node.kubelet.node, lease
    # The kubelet's Events of the pod, posted in protobuf.
    wait_for(lambda: "Started" in _event_reasons(node, "hello"), 30, interval=0.5,
             what=node.describe(f"the kubelet's events of pod hello: "
                                f"{_event_reasons(node, 'hello')}"))

    logs = wait_for(lambda: node.kubectl("logs", "hello").stdout, 30, what="kubectl logs")
    assert logs == "hello from hello\n"
    out = node.kubectl("exec", "hello", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (out.stdout, out.stderr.splitlines()[:1], out.returncode) == ("out\n", ["err"], 3), \
        node.describe(f"kubectl exec: {out.stderr}")()
    piped = node.kubectl("exec", "-i", "hello", "--", "tr", "a-z", "A-Z",
                         input="through stdin\n")
    assert (piped.stdout, piped.returncode) == ("THROUGH STDIN\n", 0), piped.stderr

    uid = running["metadata"]["uid"]
    assert node.daemon.crictl("pods", "-q", "--label", f"io.kubernetes.pod.uid={uid}").stdout
    assert node.kubectl("delete", "pod", "hello", "--wait=true").returncode == 0
    wait_for(lambda: not node.daemon.crictl("pods", "-q", "--label",
                                            f"io.kubernetes.pod.uid={uid}").stdout.strip(),
             60, interval=0.5, what=node.describe("the pod's sandbox removed"))
