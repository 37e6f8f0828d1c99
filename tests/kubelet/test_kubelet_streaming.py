"""exec, attach, cp and port-forward on a real pykubelet: straight to its HTTPS port (WebSocket
v5 with a bearer token, /run, the kubelet's error answers) and through the API server with the
real kubectl and the official Python client, over WebSocket (kubectl's default) and SPDY.
After each: no exec'd process left in the pod's cgroup, no stream socket left in the kubelet."""
from __future__ import annotations

import hashlib
import json
import os
import pty
import select
import ssl
import subprocess
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import websocket

from kubelet_testlib import BIN, IMAGE, wait_for

SPDY_ENV = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false",
            "KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"}
PROTOCOLS = {"websocket": {}, "spdy": SPDY_ENV}


def _admin_token(api_server) -> str:
    with open(api_server.token_file) as f:
        return f.readline().split(",")[0]


def _pod(name: str, node: str, command: str, **container) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0, "containers": [
                {"name": "c", "image": IMAGE, "imagePullPolicy": "Never",
                 "command": ["sh", "-c", command], **container}]}}


def _running_pod(api, namespace: str, node: str, quiet: Quiet, command: str = "sleep 3600",
                 **container) -> dict:
    name = "s-" + uuid.uuid4().hex[:6]
    api.create_pod(namespace, _pod(name, node, command, **container))
    pod = wait_for(lambda: api.running(namespace, name), what=f"pod {name} running")
    quiet.mark()
    return pod


def _fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _pod_processes(kubelet, pod: dict) -> int:
    """How many processes the pod's cgroup holds (its container's init and what runs beside)."""
    uid = pod["metadata"]["uid"]
    count = 0
    for base, dirs, files in os.walk("/sys/fs/cgroup"):
        if uid.replace("-", "_") in base or uid in base:
            if "cgroup.procs" in files:
                with open(os.path.join(base, "cgroup.procs")) as f:
                    count += len(f.read().split())
            dirs[:] = []
    return count


class Quiet:
    """Whether the kubelet holds more descriptors than at mark() (a stream or port-forward
    socket left), checked after the test, polling with a deadline."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before: int | None = None

    def mark(self) -> None:
        """Once the test's pods run (each adds a connection to its shim)."""
        self.before = _fd_count(self.pid)

    def check(self) -> None:
        if self.before is not None:
            wait_for(lambda: _fd_count(self.pid) <= self.before, timeout=30,
                     what=lambda: f"the kubelet's descriptors back to {self.before} "
                                  f"(now {_fd_count(self.pid)})")


@pytest.fixture
def quiet(kubelet):
    q = Quiet(kubelet.proc.pid)
    yield q
    q.check()


class KubeletWS:
    """A WebSocket v5 client straight to the kubelet (as the API server's proxy would be)."""

    def __init__(self, kubelet, token: str) -> None:
        self.base = f"wss://127.0.0.1:{kubelet.port}"
        self.token = token

    def exec(self, path: str, stdin: bytes | None = None) -> tuple[dict[int, bytes], dict]:
        ws = websocket.create_connection(
            self.base + path, subprotocols=["v5.channel.k8s.io"],
            header=[f"Authorization: Bearer {self.token}"],
            sslopt={"cert_reqs": ssl.CERT_NONE}, timeout=30)
        try:
            if stdin is not None:
                ws.send_binary(b"\0" + stdin)
                ws.send_binary(b"\xff\0")     # v5: close stdin
            out: dict[int, bytes] = {}
            status: dict = {}
            while True:
                try:
                    opcode, data = ws.recv_data()
                except websocket.WebSocketConnectionClosedException:
                    break
                if opcode == websocket.ABNF.OPCODE_CLOSE or not data:
                    break
                if data[0] == 3:
                    status = json.loads(data[1:])
                else:
                    out[data[0]] = out.get(data[0], b"") + data[1:]
            return out, status
        finally:
            ws.close()


# -- straight to the kubelet ----------------------------------------------------------------


def test_kubelet_exec_over_websocket(api, api_server, kubelet, namespace, quiet):
    pod = _running_pod(api, namespace, kubelet.node, quiet)
    name = pod["metadata"]["name"]
    client = KubeletWS(kubelet, _admin_token(api_server))
    query = "command=sh&command=-c&command=cat%3B+echo+err+%3E%262%3B+exit+3" \
            "&stdin=1&stdout=1&stderr=1"
    out, status = client.exec(f"/exec/{namespace}/{name}/c?{query}", stdin=b"hello\n")
    assert out == {1: b"hello\n", 2: b"err\n"}
    assert status["status"] == "Failure" and status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    uid = pod["metadata"]["uid"]
    out, status = client.exec(f"/exec/{namespace}/{name}/{uid}/c?command=echo&command=ok"
                              "&stdout=1")
    assert out == {1: b"ok\n"} and status["status"] == "Success"


def _client_cert(api_server) -> tuple[str, str]:
    """The API server's client certificate for kubelets."""
    pki = os.path.join(api_server.data_dir, "pki")
    return (os.path.join(pki, "apiserver-kubelet-client.crt"),
            os.path.join(pki, "apiserver-kubelet-client.key"))


def _https(kubelet, api_server, method: str, path: str,
           token: str | None = None) -> tuple[int, str]:
    """One request with the API server's client certificate (or a bearer token)."""
    import http.client

    ctx = ssl._create_unverified_context()
    headers = {}
    if token is None:
        ctx.load_cert_chain(*_client_cert(api_server))
    else:
        headers["Authorization"] = f"Bearer {token}"
    conn = http.client.HTTPSConnection("127.0.0.1", kubelet.port, timeout=30, context=ctx)
    try:
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def test_kubelet_answers_as_the_kubelet(api, api_server, kubelet, namespace, quiet):
    pod = _running_pod(api, namespace, kubelet.node, quiet)
    name = pod["metadata"]["name"]

    def call(method: str, path: str, token: str | None = None) -> tuple[int, str]:
        return _https(kubelet, api_server, method, path, token)
    assert call("POST", f"/run/{namespace}/{name}/c?cmd=echo+hi+there") == (200, "hi there\n")
    assert call("POST", f"/run/{namespace}/{name}/c?cmd=false") == \
        (500, "command 'false' exited with 1: \n")
    assert call("GET", f"/run/{namespace}/{name}/c?cmd=true")[0] == 405
    assert call("GET", f"/exec/{namespace}/nosuch/c?command=true&stdout=1") == \
        (404, "pod does not exist\n")
    assert call("GET", f"/exec/{namespace}/{name}/nosuch?command=true&stdout=1") == \
        (500, 'container not found ("nosuch")\n')
    assert call("GET", f"/exec/{namespace}/{name}/not-the-uid/c?command=true&stdout=1") == \
        (500, 'container not found ("c")\n')
    assert call("POST", f"/exec/{namespace}/{name}/c?stdout=1") == \
        (400, "you must specify at least one command for the container\n")
    assert call("GET", f"/attach/{namespace}/{name}/c") == \
        (400, "you must specify at least 1 of stdin, stdout, stderr\n")
    assert call("GET", f"/portForward/{namespace}/{name}/not-the-uid") == \
        (404, "pod not found\n")
    assert call("GET", f"/exec/{namespace}/{name}/c?command=true&stdout=1", "not-a-token") == \
        (401, "Unauthorized\n")
