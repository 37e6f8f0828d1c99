"""A test-only front for the streaming protocols: just enough of an API server for kubectl and
the official Python client (the pod they look up, minimal discovery), over HTTPS like the
kubelet's port, whose exec, attach and portforward subresources cri.streaming serves directly,
with backends that run local processes and dial this host's loopback."""
from __future__ import annotations

import datetime
import json
import os
import socket
import ssl
import subprocess
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

from cri.streaming import portforward, remotecommand
from cri.streaming.backend import Session, StreamError

POD = "web"
NAMESPACE = "default"
UID = "3a7c1f52-0b6e-4d0a-9d7e-5f1f6c1e2a90"
KUBECTL = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "kubectl"


def run_process(command: list[str], session: Session) -> int:
    """The exec backend: the command as a local process with the session's streams."""
    def fd(value: int | None) -> int:
        return subprocess.DEVNULL if value is None else value
    try:
        proc = subprocess.Popen(command, stdin=fd(session.stdin), stdout=fd(session.stdout),
                                stderr=fd(session.stderr))
    except OSError as e:
        raise StreamError(f'exec: "{command[0]}": {e.strerror.lower()}') from None
    return proc.wait()


def dial_loopback(port: int) -> socket.socket:
    """The port-forward backend: the "pod" is this host's loopback."""
    try:
        return socket.create_connection(("127.0.0.1", port), timeout=10)
    except OSError as e:
        raise StreamError(f"dial tcp4 127.0.0.1:{port}: connect: {e.strerror.lower()}") from None


def _pod() -> dict:
    return {"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": POD, "namespace": NAMESPACE, "uid": UID},
            "spec": {"containers": [{"name": "main", "image": "busybox"}]},
            "status": {"phase": "Running",
                       "containerStatuses": [{"name": "main", "ready": True, "restartCount": 0,
                                              "image": "busybox", "imageID": "",
                                              "state": {"running": {}}}]}}


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "streaming-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class Front:
    """The server. `attach` is the attach backend (tests set it), `exec` the exec backend."""
    server: ThreadingHTTPServer
    thread: threading.Thread
    scheme: str
    exec: Callable[[list[str], Session], int] = run_process
    attach: Callable[[Session], None] | None = None
    stream_creation_timeout: float = remotecommand.STREAM_CREATION_TIMEOUT
    requests: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}"

    def kubeconfig(self, directory: Path) -> Path:
        path = directory / "kubeconfig"
        cluster = {"server": self.url}
        if self.scheme == "https":
            cluster["insecure-skip-tls-verify"] = True
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "t",
            "clusters": [{"name": "t", "cluster": cluster}],
            "users": [{"name": "t", "user": {"token": "streaming-test"}}],
            "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t",
                                                    "namespace": NAMESPACE}}]}))
        return path

    def client(self):
        """The official Python client's CoreV1Api against this front."""
        from kubernetes import client
        config = client.Configuration()
        config.host = self.url
        config.verify_ssl = False
        return client.CoreV1Api(client.ApiClient(config))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def start(tls_dir: Path | None) -> Front:
    """Serves on 127.0.0.1 at a port the kernel picks; HTTPS with a certificate made in
    `tls_dir`, plain HTTP without one."""
    front: Front

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _json(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            front.requests.append(f"{self.command} {self.path}")
            pod = f"/api/v1/namespaces/{NAMESPACE}/pods/{POD}"
            if path.startswith(pod + "/"):
                return self._stream(path[len(pod) + 1:], query)
            if path == pod:
                return self._json(200, _pod())
            if path == "/api":
                return self._json(200, {"kind": "APIVersions", "versions": ["v1"],
                                        "serverAddressByClientCIDRs": []})
            if path == "/apis":
                return self._json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
            if path == "/api/v1":
                return self._json(200, {"kind": "APIResourceList", "groupVersion": "v1",
                                        "resources": [{"name": "pods", "singularName": "pod",
                                                       "namespaced": True, "kind": "Pod",
                                                       "verbs": ["get", "list"]}]})
            self._json(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                             "reason": "NotFound", "code": 404, "message": f"{path} not found"})

        do_POST = do_GET

        def _stream(self, kind: str, query: str) -> None:
            if kind == "portforward":
                return portforward.serve(self, query, dial_loopback, pod=POD, uid=UID)
            try:
                opts = remotecommand.options(query, exec_=kind == "exec")
            except remotecommand.OptionsError as e:
                return self._json(400, {"kind": "Status", "apiVersion": "v1",
                                        "status": "Failure", "message": str(e), "code": 400})
            if kind == "exec":
                remotecommand.serve(self, opts, lambda s: front.exec(list(opts.command), s),
                                    front.stream_creation_timeout)
            else:
                remotecommand.serve(self, opts, lambda s: front.attach(s),
                                    front.stream_creation_timeout)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    scheme = "http"
    if tls_dir is not None:
        cert, key = self_signed(tls_dir)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    thread = threading.Thread(target=server.serve_forever, name="stream-front", daemon=True)
    front = Front(server, thread, scheme)
    thread.start()
    return front


def kubectl_env(kubeconfig: Path, websockets: bool) -> dict[str, str]:
    flag = "true" if websockets else "false"
    return {**os.environ, "KUBECONFIG": str(kubeconfig),
            "KUBECTL_REMOTE_COMMAND_WEBSOCKETS": flag, "KUBECTL_PORT_FORWARD_WEBSOCKETS": flag}


def kubectl(kubeconfig: Path, *args: str, websockets: bool = True, stdin: bytes = b"",
            timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(KUBECTL), *args], input=stdin, capture_output=True,
                          env=kubectl_env(kubeconfig, websockets), timeout=timeout)


@dataclass
class WebServer:
    """The "pod's" HTTP server on loopback: GET /<anything> answers the path 2000 times."""
    server: ThreadingHTTPServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def body_for(path: str) -> bytes:
    return (path * 2000).encode()


def start_web() -> WebServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = body_for(urllib.parse.unquote(self.path))
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="pod-web", daemon=True)
    thread.start()
    return WebServer(server, thread)
