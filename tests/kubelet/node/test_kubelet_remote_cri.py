"""pykubelet over a CRI socket (--container-runtime-endpoint, issue 24): the same pod checks
against pycontainer-cri and against containerd 1.6's CRI plugin, each with its own CNI network
in 198.18.0.0/15: a pod Running with an IP of the runtime's network, its logs, kubectl exec
through the kubelet's proxy to the runtime's streaming server, a restart on failure, a delete
that removes the sandbox through the CRI, the pod's sysctls; exec, attach and port-forward
over both of kubectl's protocols (WebSocket, SPDY). Plus the flag's bad input, in one line."""
from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import subprocess
import urllib.request

import pytest

from kubelet_testlib import PYKUBELET, KubeletProcess, pod_manifest, wait_for
from remote_cri_testlib import RUNTIMES, RemoteRuntime

KUBECTL = shutil.which("kubectl", path=os.path.dirname(PYKUBELET))
PROTOCOLS = {"websocket": {}, "spdy": {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false",
                                       "KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"}}


@pytest.fixture(scope="module", params=RUNTIMES)
def runtime(request, image_root):
    r = RemoteRuntime(request.param, image_root)
    try:
        r.start()
        yield r
    finally:
        r.cleanup()


@pytest.fixture(scope="module")
def remote_kubelet(runtime, api_server, nodes, image_root):
    name, token = nodes.take()
    k = KubeletProcess(api_server, name, token, image_root,
                       {"containerRuntimeEndpoint": runtime.endpoint})
    try:
        k.start()
        yield k
    finally:
        # The runtime's pods go first: their cgroups are below the kubelet's cgroup root.
        try:
            k.kill(signal.SIGTERM)
        finally:
            try:
                runtime.remove_pods()
            finally:
                k.cleanup()


def _describe(api, namespace: str, name: str, k: KubeletProcess):
    return lambda: f"pod {name}: {api.pod(namespace, name)}\nkubelet log:\n{k.log()[-3000:]}"


def test_running_with_an_ip_and_logs(api, namespace, remote_kubelet, runtime):
    api.create_pod(namespace, pod_manifest("hello", remote_kubelet.node,
                                           "echo hello from $(hostname); sleep 3600"))
    pod = wait_for(lambda: api.running(namespace, "hello"), 90,
                   what=_describe(api, namespace, "hello", remote_kubelet))
    assert ipaddress.ip_address(pod["status"]["podIP"]) in ipaddress.ip_network(runtime.subnet)
    logs = wait_for(lambda: api.kubectl("logs", "-n", namespace, "hello").stdout, 30,
                    what="kubectl logs")
    assert logs == "hello from hello\n"


def test_pod_sysctls_reach_the_sandbox(api, namespace, remote_kubelet):
    """containerd sets them on the sandbox (the pod's network namespace), from RunPodSandbox."""
    pod = pod_manifest("tuned", remote_kubelet.node,
                       "cat /proc/sys/net/ipv4/ip_local_port_range; sleep 3600")
    pod["spec"]["securityContext"] = {"sysctls": [
        {"name": "net.ipv4.ip_local_port_range", "value": "32768 32999"}]}
    api.create_pod(namespace, pod)
    wait_for(lambda: api.running(namespace, "tuned"), 90,
             what=_describe(api, namespace, "tuned", remote_kubelet))
    logs = wait_for(lambda: api.kubectl("logs", "-n", namespace, "tuned").stdout, 30,
                    what="kubectl logs")
    assert logs.split() == ["32768", "32999"]


@pytest.fixture(params=sorted(PROTOCOLS))
def protocol_env(request) -> dict:
    return {**os.environ, **PROTOCOLS[request.param]}


def test_kubectl_exec(api, namespace, remote_kubelet, protocol_env):
    api.create_pod(namespace, pod_manifest("shell", remote_kubelet.node, "sleep 3600"))
    wait_for(lambda: api.running(namespace, "shell"), 90,
             what=_describe(api, namespace, "shell", remote_kubelet))
    kubectl = [KUBECTL, "--kubeconfig", api.server.kubeconfig, "-n", namespace]
    out = subprocess.run([*kubectl, "exec", "shell", "--", "sh", "-c",
                          "echo out; echo err >&2; exit 3"], capture_output=True, text=True,
                         timeout=30, env=protocol_env)
    assert (out.stdout, out.stderr.splitlines()[:1], out.returncode) == ("out\n", ["err"], 3)
    piped = subprocess.run([*kubectl, "exec", "-i", "shell", "--", "tr", "a-z", "A-Z"],
                           input="through stdin\n", capture_output=True, text=True, timeout=30,
                           env=protocol_env)
    assert (piped.stdout, piped.returncode) == ("THROUGH STDIN\n", 0), piped.stderr


def test_kubectl_attach(api, namespace, remote_kubelet, protocol_env):
    pod = pod_manifest("reader", remote_kubelet.node, "read line; echo got $line",
                       restart_policy="Never")
    # stdinOnce: the output after our stdin's end still comes (containerd, without it, ends
    # an attach's output streams with its stdin)
    pod["spec"]["containers"][0].update(stdin=True, stdinOnce=True)
    api.create_pod(namespace, pod)
    wait_for(lambda: api.running(namespace, "reader"), 90,
             what=_describe(api, namespace, "reader", remote_kubelet))
    attached = subprocess.run([KUBECTL, "--kubeconfig", api.server.kubeconfig, "-n", namespace,
                               "attach", "-i", "reader"], input="hello\n",
                              capture_output=True, text=True, timeout=60, env=protocol_env)
    assert "got hello" in attached.stdout, attached.stderr


def test_kubectl_port_forward(api, namespace, remote_kubelet, protocol_env):
    api.create_pod(namespace, pod_manifest(
        "web", remote_kubelet.node, "mkdir -p /www && echo hello from httpd > /www/index.html "
        "&& exec httpd -f -p 8080 -h /www"))
    wait_for(lambda: api.running(namespace, "web"), 90,
             what=_describe(api, namespace, "web", remote_kubelet))
    forward = subprocess.Popen([KUBECTL, "--kubeconfig", api.server.kubeconfig, "-n",
                                namespace, "port-forward", "web", ":8080"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=protocol_env)
    try:
        line = forward.stdout.readline().decode()
        assert line.startswith("Forwarding from 127.0.0.1:"), line
        port = int(line.split("127.0.0.1:")[1].split()[0])
        for _ in range(3):      # each a stream pair of its own on the one connection
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as resp:
                assert resp.read() == b"hello from httpd\n"
    finally:
        forward.terminate()
        forward.wait(30)
        forward.stdout.close()
        forward.stderr.close()


def test_restart_on_failure(api, namespace, remote_kubelet):
    api.create_pod(namespace, pod_manifest("flaky", remote_kubelet.node,
                                           "echo attempt; exit 3", restart_policy="OnFailure"))

    def restarted():
        s = api.container_status(namespace, "flaky")
        return s if s.get("restartCount", 0) >= 1 and "terminated" in s.get("lastState", {}) \
            else None
    status = wait_for(restarted, 90, what=_describe(api, namespace, "flaky", remote_kubelet))
    assert status["lastState"]["terminated"]["exitCode"] == 3
    assert api.phase(namespace, "flaky") in ("Running", "Pending")


def test_delete_removes_the_sandbox(api, namespace, remote_kubelet, runtime):
    api.create_pod(namespace, pod_manifest("doomed", remote_kubelet.node, "sleep 3600",
                                           grace=1))
    pod = wait_for(lambda: api.running(namespace, "doomed"), 90,
                   what=_describe(api, namespace, "doomed", remote_kubelet))
    uid = pod["metadata"]["uid"]
    assert runtime.sandboxes(uid)
    api.delete_pod(namespace, "doomed")
    wait_for(lambda: api.pod(namespace, "doomed") is None, 60, what="the pod gone from the API")
    wait_for(lambda: not runtime.sandboxes(uid), 60,
             what=lambda: f"sandboxes of {uid} removed: {runtime.sandboxes(uid)}")


def test_unreachable_endpoint_is_one_line(tmp_path):
    p = subprocess.run([PYKUBELET, "--root-dir", str(tmp_path / "root"),
                        "--container-runtime-endpoint", f"unix://{tmp_path}/none.sock",
                        "--hostname-override", "nowhere", "--port", "0",
                        "--address", "127.0.0.1"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert p.stderr.count("\n") == 1 and p.stderr.startswith(
        "pykubelet: --container-runtime-endpoint:"), p.stderr
    bad = subprocess.run([PYKUBELET, "--root-dir", str(tmp_path / "root"),
                          "--container-runtime-endpoint", "tcp://127.0.0.1:1"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and bad.stderr == (
        "pykubelet: --container-runtime-endpoint: 'tcp://127.0.0.1:1': only unix:///path "
        "endpoints are supported\n")
