"""pods/exec, pods/attach and pods/portforward through the API server: the upgrade request is
authorized, proxied to the node's kubelet (here a TLS stand-in that answers 101 and echoes what
it gets, protocol-agnostic), and the bytes copied both ways until either side closes."""
from __future__ import annotations

import hashlib
import json
import os
import socket
import ssl
import threading
import urllib.parse

import pytest

from apiserver_testlib import ADMIN_TOKEN, NODE_TOKEN, USER_TOKEN, wait_for

SPDY = [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"),
        ("X-Stream-Protocol-Version", "v4.channel.k8s.io"),
        ("X-Stream-Protocol-Version", "v3.channel.k8s.io")]
WEBSOCKET = [("Connection", "Upgrade"), ("Upgrade", "websocket"),
             ("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
             ("Sec-WebSocket-Protocol", "v5.channel.k8s.io")]
GREETING = b"kubelet says hi\n"


class StandInKubelet:
    """Answers every request with 101 (or, for command=fail, a 400) and then echoes bytes;
    b"BYE" makes it close. Records each request head and whether its peer closed first."""

    def __init__(self, pki: str):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(os.path.join(pki, "apiserver.crt"),
                                 os.path.join(pki, "apiserver.key"))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.heads: list[tuple[str, list[tuple[str, str]]]] = []
        self.peer_closed = threading.Event()
        self.threads: list[threading.Thread] = []
        self.conns: list[socket.socket] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            self.conns.append(raw)
            t = threading.Thread(target=self._serve, args=(raw,), daemon=True)
            t.start()
            self.threads.append(t)

    def _serve(self, raw: socket.socket) -> None:
        try:
            conn = self.ctx.wrap_socket(raw, server_side=True)
            buf = b""
            while b"\r\n\r\n" not in buf:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            head, rest = buf.split(b"\r\n\r\n", 1)
            lines = head.decode().split("\r\n")
            path = lines[0].split()[1]
            self.heads.append((lines[0], [tuple(x.split(": ", 1)) for x in lines[1:]]))
            if "command=fail" in path:
                body = b"you must specify at least 1 of stdin, stdout, stderr"
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                return
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                         b"Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io"
                         b"\r\n\r\n" + GREETING)
            if rest:
                conn.sendall(rest)
            while True:
                data = conn.recv(65536)
                if not data:
                    self.peer_closed.set()
                    return
                if data == b"BYE":
                    return
                conn.sendall(data)
        except OSError:
            return
        finally:
            raw.close()

    def close(self) -> None:
        self.listener.close()
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self.threads:
            t.join(10)


@pytest.fixture
def kubelet(server):
    k = StandInKubelet(os.path.join(server.data_dir, "pki"))
    yield k
    k.close()


@pytest.fixture
def pod_on_standin(core, namespace, kubelet):
    """A pod bound to a node whose kubelet is the stand-in."""
    node = f"stream-{namespace}"
    core.create_node({"metadata": {"name": node}, "spec": {"unschedulable": True},
                      "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                                 "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet.port}}}})
    try:
        core.create_namespaced_pod(namespace, {
            "metadata": {"name": "p"},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}})
        core.create_namespaced_pod(namespace, {
            "metadata": {"name": "two"},
            "spec": {"nodeName": node, "initContainers": [{"name": "i", "image": "busybox"}],
                     "containers": [{"name": "a", "image": "busybox"},
                                    {"name": "b", "image": "busybox"}]}})
        yield namespace
    finally:
        core.delete_node(node)


class Client:
    """A raw TLS connection to the API server speaking just enough HTTP to upgrade."""

    def __init__(self, server, method: str, path: str, headers: list[tuple[str, str]],
                 token: str = ADMIN_TOKEN, early: bytes = b""):
        ctx = ssl.create_default_context(cafile=os.path.join(server.data_dir, "pki", "ca.crt"))
        self.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", server.port), 30),
                                    server_hostname="127.0.0.1")
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}",
                 f"Authorization: Bearer {token}", *(f"{k}: {v}" for k, v in headers)]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + early)
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = self.sock.recv(65536)
            assert data, f"connection closed before the answer: {buf!r}"
            buf += data
        head, self.pending = buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.code = int(lines[0].split()[1])
        self.headers = [tuple(x.split(": ", 1)) for x in lines[1:]]

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers if k.lower() == name.lower()), "")

    def read_exactly(self, n: int) -> bytes:
        data, self.pending = self.pending, b""
        while len(data) < n:
            more = self.sock.recv(n - len(data))
            assert more, f"closed after {len(data)} of {n} bytes"
            data += more
        self.pending = data[n:]
        return data[:n]

    def read_body(self) -> bytes:
        n = int(self.header("Content-Length") or 0)
        return self.read_exactly(n)

    def at_eof(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except (ConnectionError, ssl.SSLError):
            return True

    def close(self) -> None:
        self.sock.close()


def server_fds(server) -> int:
    """The server's open sockets (its storage opens a database connection per thread)."""
    fd_dir = f"/proc/{server.proc.pid}/fd"
    count = 0
    for fd in os.listdir(fd_dir):
        try:
            count += os.readlink(os.path.join(fd_dir, fd)).startswith("socket:")
        except FileNotFoundError:
            continue
    return count


def server_threads(server) -> int:
    return len(os.listdir(f"/proc/{server.proc.pid}/task"))


def exec_path(ns: str, pod: str = "p", **query) -> str:
    q = urllib.parse.urlencode(query, doseq=True)
    return f"/api/v1/namespaces/{ns}/pods/{pod}/exec?{q}"


def test_spdy_exec_is_proxied_and_copies_bytes_both_ways(server, pod_on_standin, kubelet):
    ns = pod_on_standin
    fds, threads = server_fds(server), server_threads(server)
    c = Client(server, "POST", exec_path(ns, command=["sh", "-c", "echo hi"], stdin="true",
                                         stdout="true", tty="true", container="c"),
               SPDY, early=b"sent with the request")
    try:
        assert c.code == 101
        assert c.header("X-Stream-Protocol-Version") == "v4.channel.k8s.io"
        assert c.read_exactly(len(GREETING)) == GREETING
        assert c.read_exactly(21) == b"sent with the request"
        line, headers = kubelet.heads[-1]
        # the options as kube-apiserver passes them on: booleans as 1, stdout/stderr defaulted
        assert line == (f"POST /exec/{ns}/p/c?command=sh&command=-c&command=echo+hi&error=1"
                        "&input=1&output=1&tty=1 HTTP/1.1")
        names = [k.lower() for k, _ in headers]
        assert "authorization" not in names
        assert [v for k, v in headers if k == "X-Stream-Protocol-Version"] == \
            ["v4.channel.k8s.io", "v3.channel.k8s.io"]
        assert ("Upgrade", "SPDY/3.1") in headers

        payload = os.urandom(1 << 20)
        got = hashlib.sha256()
        for i in range(0, len(payload), 65536):
            c.sock.sendall(payload[i:i + 65536])
            got.update(c.read_exactly(len(payload[i:i + 65536])))
        assert got.hexdigest() == hashlib.sha256(payload).hexdigest()

        c.sock.sendall(b"BYE")  # the kubelet closes: so does the client's connection
        assert wait_for(c.at_eof)
    finally:
        c.close()
    wait_for(lambda: server_fds(server) <= fds and server_threads(server) <= threads)


def test_client_close_reaches_the_kubelet(server, pod_on_standin, kubelet):
    ns = pod_on_standin
    fds = server_fds(server)
    c = Client(server, "GET", exec_path(ns, command="true", stdout="1"), WEBSOCKET)
    assert c.code == 101
    assert c.read_exactly(len(GREETING)) == GREETING
    c.sock.sendall(b"ping")
    assert c.read_exactly(4) == b"ping"
    c.close()
    assert kubelet.peer_closed.wait(10)
    wait_for(lambda: server_fds(server) <= fds)


def test_upgrades_need_create_on_the_subresource(server, pod_on_standin, kubelet):
    ns = pod_on_standin
    for method, headers in (("GET", WEBSOCKET), ("POST", SPDY)):
        for token, who in ((USER_TOKEN, "alice"), (NODE_TOKEN, "system:node:n1")):
            c = Client(server, method, exec_path(ns, command="true"), headers, token=token)
            try:
                assert c.code == 403, (method, who)
                status = json.loads(c.read_body())
                assert status["reason"] == "Forbidden"
                assert f'User "{who}" cannot' in status["message"]
                assert 'resource "pods/exec"' in status["message"]
            finally:
                c.close()
    assert not kubelet.heads


def test_attach_and_portforward_paths(server, pod_on_standin, kubelet):
    ns = pod_on_standin
    c = Client(server, "GET", f"/api/v1/namespaces/{ns}/pods/two/attach?container=b&stdin=1"
               "&stdout=false", WEBSOCKET)
    c.close()
    assert c.code == 101
    assert kubelet.heads[-1][0] == f"GET /attach/{ns}/two/b?error=1&input=1&output=1 HTTP/1.1"
    c = Client(server, "POST", f"/api/v1/namespaces/{ns}/pods/p/portforward?ports=8080"
               "&ports=9090", SPDY)
    c.close()
    assert c.code == 101
    assert kubelet.heads[-1][0] == f"POST /portForward/{ns}/p?port=8080%2C9090 HTTP/1.1"
    c = Client(server, "POST", f"/api/v1/namespaces/{ns}/pods/p/portforward", SPDY)
    c.close()
    assert kubelet.heads[-1][0] == f"POST /portForward/{ns}/p HTTP/1.1"


def test_refusals_before_and_from_the_kubelet(server, pod_on_standin, kubelet):
    ns = pod_on_standin
    cases = [
        (exec_path(ns, "two", command="ls"), WEBSOCKET, 400,
         "a container name must be specified for pod two, choose one of: [i a b]"),
        (exec_path(ns, command="ls", container="nope"), WEBSOCKET, 400,
         "container nope is not valid for pod p"),
        (exec_path(ns, command="ls"), [], 400, "Upgrade request required"),
        (exec_path(ns, "missing", command="ls"), WEBSOCKET, 404, 'pods "missing" not found'),
    ]
    for path, headers, code, message in cases:
        c = Client(server, "GET", path, headers)
        try:
            assert c.code == code, path
            assert json.loads(c.read_body())["message"] == message
        finally:
            c.close()
    assert not kubelet.heads
    c = Client(server, "POST", exec_path(ns, command="fail"), SPDY)
    try:
        assert c.code == 400
        assert c.header("Content-Type") == "text/plain"
        assert c.read_body() == b"you must specify at least 1 of stdin, stdout, stderr"
    finally:
        c.close()


def test_unreachable_kubelet(server, core, namespace):
    node = f"gone-{namespace}"
    core.create_node({"metadata": {"name": node}, "spec": {"unschedulable": True},
                      "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                                 "daemonEndpoints": {"kubeletEndpoint": {"Port": 1}}}})
    try:
        core.create_namespaced_pod(namespace, {
            "metadata": {"name": "p"},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}})
        c = Client(server, "POST", exec_path(namespace, command="ls"), SPDY)
        try:
            assert c.code == 500
            assert json.loads(c.read_body())["message"].startswith("error dialing backend: ")
        finally:
            c.close()
    finally:
        core.delete_node(node)
