"""exec, attach, cp and port-forward on a real pykubelet: straight to its HTTPS port (WebSocket
v5 with a bearer token, /run, the kubelet's error answers) and through the API server with the
real kubectl and the official Python client, over WebSocket (kubectl's default) and SPDY.
After each: no exec'd process left in the pod's cgroup, no stream socket left in the kubelet."""
from __future__ import annotations

import hashlib
import json
import os
import select
import ssl
import subprocess
import time
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
    """How many processes the pod's cgroup holds (its container's init and what runs beside),
    in one hierarchy (the unified one, or v1's pids)."""
    top = "/sys/fs/cgroup"
    if not os.path.exists(os.path.join(top, "cgroup.controllers")):
        top = os.path.join(top, "pids")
    uid = pod["metadata"]["uid"]
    count = 0
    for base, _, files in os.walk(os.path.join(top, kubelet.cgroup_root.lstrip("/"))):
        if (uid in base or uid.replace("-", "_") in base) and "cgroup.procs" in files:
            with open(os.path.join(base, "cgroup.procs")) as f:
                count += len(f.read().split())
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


# -- units -----------------------------------------------------------------------------------


def test_streaming_paths():
    from kubelet.server.streaming import Request, parse_path

    assert parse_path(["exec", "ns", "p", "c"]) == Request("exec", "ns", "p", "", "c")
    assert parse_path(["attach", "ns", "p", "u", "c"]) == Request("attach", "ns", "p", "u", "c")
    assert parse_path(["portForward", "ns", "p"]) == Request("portForward", "ns", "p", "", "")
    assert parse_path(["portForward", "ns", "p", "u"]) == \
        Request("portForward", "ns", "p", "u", "")
    assert parse_path(["run", "ns", "p", "c"]) == Request("run", "ns", "p", "", "c")
    for wrong in (["exec", "ns", "p"], ["exec", "a", "b", "c", "d", "e"], ["portForward", "ns"],
                  ["containerLogs", "ns", "p", "c"], []):
        assert parse_path(wrong) is None


def test_a_tty_container_gets_a_terminal_and_term(tmp_path):
    from cri.api import ContainerConfig, ContainerMetadata
    from cri.container_spec import SandboxNamespaces, build

    (tmp_path / "etc").mkdir()
    sandbox = SandboxNamespaces(netns="", ipc="", uts="", shm_dir="", hostname="h",
                                cgroup_parent="/pyc/pod1")
    image = {"config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]}}
    tty = build("cid", ContainerConfig(ContainerMetadata("c"), "img", tty=True, stdin=True),
                image, str(tmp_path), sandbox, unified_cgroups=False)
    assert tty["process"]["terminal"] is True and "TERM=xterm" in tty["process"]["env"]
    plain = build("cid", ContainerConfig(ContainerMetadata("c"), "img"), image, str(tmp_path),
                  sandbox, unified_cgroups=False)
    assert plain["process"]["terminal"] is False
    assert not any(e.startswith("TERM=") for e in plain["process"]["env"])


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


# -- kubectl and the Python client through the API server ------------------------------------


def _kubectl(api_server, *args: str, env: dict | None = None, input: bytes | None = None,
             timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([os.path.join(BIN, "kubectl"), "--kubeconfig", api_server.kubeconfig,
                           *args], input=input, capture_output=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


@pytest.fixture(params=sorted(PROTOCOLS))
def protocol_env(request) -> dict:
    """kubectl's environment for each protocol: WebSocket (its default), then SPDY."""
    return PROTOCOLS[request.param]


def _no_exec_left(kubelet, pod: dict) -> None:
    """Only the container's own process is left in the pod's cgroup."""
    wait_for(lambda: _pod_processes(kubelet, pod) == 1, timeout=30,
             what=lambda: f"one process in the pod (now {_pod_processes(kubelet, pod)})")


def test_kubectl_exec_exit_codes_and_stdin(api, api_server, kubelet, namespace, quiet,
                                           protocol_env):
    pod = _running_pod(api, namespace, kubelet.node, quiet)
    name = pod["metadata"]["name"]
    ok = _kubectl(api_server, "-n", namespace, "exec", name, "--", "echo", "hello",
                  env=protocol_env)
    assert (ok.returncode, ok.stdout) == (0, b"hello\n"), ok.stderr
    three = _kubectl(api_server, "-n", namespace, "exec", name, "--", "sh", "-c",
                     "echo out; echo err >&2; exit 3", env=protocol_env)
    assert (three.returncode, three.stdout) == (3, b"out\n"), three.stderr
    assert b"err\n" in three.stderr
    missing = _kubectl(api_server, "-n", namespace, "exec", name, "--", "no-such-command",
                       env=protocol_env)
    assert missing.returncode == 1
    assert missing.stderr.startswith(b"error: Internal error occurred: error executing command "
                                     b"in container: ")
    assert b"no-such-command" in missing.stderr and missing.stderr.count(b"\n") == 1
    data = os.urandom(300_000)
    piped = _kubectl(api_server, "-n", namespace, "exec", "-i", name, "--", "sha256sum",
                     env=protocol_env, input=data)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest()
    _no_exec_left(kubelet, pod)


class Terminal:
    """kubectl on a pty of the test's own, as a user's terminal: the test types on the master
    and sets its size there (the kernel signals kubectl SIGWINCH)."""

    def __init__(self, argv: list[str], env: dict, rows: int, cols: int) -> None:
        import fcntl
        import termios

        self.master, slave = os.openpty()
        self.resize(rows, cols)

        def controlling_terminal() -> None:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                                     env={**os.environ, **env}, start_new_session=True,
                                     preexec_fn=controlling_terminal)
        os.close(slave)
        self.seen = b""

    def resize(self, rows: int, cols: int) -> None:
        import fcntl
        import struct
        import termios

        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def read_until(self, wanted: bytes, retype: bytes = b"", timeout: float = 30) -> None:
        """Reads the terminal until `wanted` shows, typing `retype` again each time a wait
        for output ends empty (the command answers each line it reads)."""
        deadline = time.monotonic() + timeout
        while wanted not in self.seen:
            assert time.monotonic() < deadline, f"{wanted!r} not in {self.seen[-500:]!r}"
            if select.select([self.master], [], [], 0.5)[0]:
                try:
                    self.seen += os.read(self.master, 65536)
                except OSError:  # EIO: kubectl is gone
                    raise AssertionError(f"kubectl ended: {self.seen[-500:]!r}") from None
            elif retype:
                self.type(retype)

    def close(self) -> int:
        try:
            return self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            os.close(self.master)


def test_kubectl_exec_with_a_terminal_and_resize(api, api_server, kubelet, namespace, quiet,
                                                 protocol_env):
    pod = _running_pod(api, namespace, kubelet.node, quiet)
    name = pod["metadata"]["name"]
    term = Terminal([os.path.join(BIN, "kubectl"), "--kubeconfig", api_server.kubeconfig,
                     "-n", namespace, "exec", "-it", name, "--", "sh", "-c",
                     "while read line; do echo size $(stty size) tty $(tty); done"],
                    protocol_env, 40, 100)
    try:
        # a line typed answers the size the container's terminal has now
        term.read_until(b"size 40 100 tty /dev/pts/", retype=b"\n")
        term.resize(50, 120)
        term.read_until(b"size 50 120", retype=b"\n")
        term.type(b"\x04")     # ^D: read ends, the command exits 0
    finally:
        code = term.close()
    assert code == 0, term.seen[-500:]
    _no_exec_left(kubelet, pod)


def test_kubectl_attach_to_a_stdin_container(api, api_server, kubelet, namespace, quiet,
                                             protocol_env):
    name = "a-" + uuid.uuid4().hex[:6]
    manifest = _pod(name, kubelet.node, "while read l; do echo got $l; done; echo bye",
                    stdin=True, stdinOnce=True)
    manifest["spec"]["restartPolicy"] = "Never"
    api.create_pod(namespace, manifest)
    wait_for(lambda: api.running(namespace, name), what=f"pod {name} running")
    quiet.mark()
    attached = _kubectl(api_server, "-n", namespace, "attach", "-i", name, env=protocol_env,
                        input=b"one\ntwo\n")
    assert attached.returncode == 0, attached.stderr
    assert attached.stdout == b"got one\ngot two\nbye\n"
    # stdinOnce: the attach's EOF was the container's, it ended
    wait_for(lambda: api.phase(namespace, name) == "Succeeded", what="the pod done")


def test_kubectl_cp_both_ways(api, api_server, kubelet, namespace, quiet, protocol_env,
                              tmp_path):
    pod = _running_pod(api, namespace, kubelet.node, quiet)
    name = pod["metadata"]["name"]
    data = os.urandom(5 << 20)
    local = tmp_path / "up.bin"
    local.write_bytes(data)
    up = _kubectl(api_server, "-n", namespace, "cp", str(local), f"{name}:/tmp/up.bin",
                  env=protocol_env)
    assert up.returncode == 0, up.stderr
    inside = _kubectl(api_server, "-n", namespace, "exec", name, "--", "sha256sum",
                      "/tmp/up.bin", env=protocol_env)
    assert inside.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest()
    down = tmp_path / "down.bin"
    back = _kubectl(api_server, "-n", namespace, "cp", f"{name}:/tmp/up.bin", str(down),
                    env=protocol_env)
    assert back.returncode == 0, back.stderr
    assert hashlib.sha256(down.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
    _no_exec_left(kubelet, pod)


def test_kubectl_port_forward_20_parallel_requests(api, api_server, kubelet, namespace, quiet,
                                                   protocol_env):
    pod = _running_pod(api, namespace, kubelet.node, quiet,
                       "mkdir -p /www && echo hello from httpd > /www/index.html && "
                       "exec httpd -f -p 8080 -h /www")
    name = pod["metadata"]["name"]
    forward = subprocess.Popen(
        [os.path.join(BIN, "kubectl"), "--kubeconfig", api_server.kubeconfig, "-n", namespace,
         "port-forward", name, ":8080"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, **protocol_env})
    try:
        line = forward.stdout.readline().decode()
        assert line.startswith("Forwarding from 127.0.0.1:"), \
            line + forward.stderr.read1().decode()
        port = int(line.split("127.0.0.1:")[1].split()[0])

        def fetch(_: int) -> bytes:
            import urllib.request

            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as resp:
                return resp.read()
        with ThreadPoolExecutor(20) as pool:
            bodies = list(pool.map(fetch, range(20)))
        assert bodies == [b"hello from httpd\n"] * 20
    finally:
        forward.terminate()
        forward.wait(30)
        forward.stdout.close()
        forward.stderr.close()


def test_python_client_stream_exec(api, api_server, kubelet, namespace, quiet):
    from kubernetes import client as k8s
    from kubernetes.stream import stream

    pod = _running_pod(api, namespace, kubelet.node, quiet)
    name = pod["metadata"]["name"]
    core = k8s.CoreV1Api(api_server.client())
    try:
        out = stream(core.connect_get_namespaced_pod_exec, name, namespace,
                     command=["sh", "-c", "echo from python; echo to stderr >&2"],
                     stderr=True, stdin=False, stdout=True, tty=False)
        assert "from python" in out
        ws = stream(core.connect_get_namespaced_pod_exec, name, namespace,
                    command=["sh", "-c", "read x; echo got $x; exit 4"], stderr=True,
                    stdin=True, stdout=True, tty=False, _preload_content=False)
        ws.write_stdin("hi\n")
        ws.run_forever(timeout=30)
        assert ws.read_stdout() == "got hi\n"
        assert ws.returncode == 4
        ws.close()
    finally:
        core.api_client.close()
    _no_exec_left(kubelet, pod)


def test_kubectl_exec_killed_leaves_nothing(api, api_server, kubelet, namespace, quiet,
                                            protocol_env):
    pod = _running_pod(api, namespace, kubelet.node, quiet)
    name = pod["metadata"]["name"]
    execs = subprocess.Popen(
        [os.path.join(BIN, "kubectl"), "--kubeconfig", api_server.kubeconfig, "-n", namespace,
         "exec", name, "--", "sleep", "1000"], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, env={**os.environ, **protocol_env})
    try:
        wait_for(lambda: _pod_processes(kubelet, pod) == 2, what="the exec'd sleep running")
    finally:
        execs.kill()    # the client goes without a word
        execs.wait(30)
    _no_exec_left(kubelet, pod)


def test_kubectl_attach_to_a_terminal(api, api_server, kubelet, namespace, quiet,
                                      protocol_env):
    name = "t-" + uuid.uuid4().hex[:6]
    manifest = _pod(name, kubelet.node,
                    "while read line; do echo size $(stty size) tty $(tty); done",
                    stdin=True, tty=True)
    manifest["spec"]["restartPolicy"] = "Never"
    api.create_pod(namespace, manifest)
    wait_for(lambda: api.running(namespace, name), what=f"pod {name} running")
    quiet.mark()
    term = Terminal([os.path.join(BIN, "kubectl"), "--kubeconfig", api_server.kubeconfig,
                     "-n", namespace, "attach", "-it", name], protocol_env, 30, 90)
    try:
        term.read_until(b"size 30 90 tty /dev/pts/", retype=b"\n")
        term.resize(31, 91)
        term.read_until(b"size 31 91", retype=b"\n")
        term.type(b"\x04")     # ^D on the container's terminal: its read ends, it exits
    finally:
        code = term.close()
    assert code == 0, term.seen[-500:]
    wait_for(lambda: api.phase(namespace, name) == "Succeeded", what="the pod done")


def test_attach_and_exec_after_a_kubelet_restart(api, api_server, start_kubelet, namespace):
    import signal

    kubelet = start_kubelet()
    name = "r-" + uuid.uuid4().hex[:6]
    manifest = _pod(name, kubelet.node, "read l; echo got $l", stdin=True)
    manifest["spec"]["restartPolicy"] = "Never"
    api.create_pod(namespace, manifest)
    wait_for(lambda: api.running(namespace, name), what=f"pod {name} running")
    kubelet.kill(signal.SIGKILL)
    kubelet.proc.wait(30)
    kubelet.start()
    # the restarted kubelet finds the container, its shim and its stdin fifo again
    ran = _kubectl(api_server, "-n", namespace, "exec", name, "--", "echo", "still here")
    assert (ran.returncode, ran.stdout) == (0, b"still here\n"), ran.stderr
    attached = _kubectl(api_server, "-n", namespace, "attach", "-i", name, input=b"after\n")
    assert attached.returncode == 0, attached.stderr
    assert attached.stdout == b"got after\n"
