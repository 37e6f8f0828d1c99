"""The real control plane for the upstream kubelet's test (../shared/refbin/README.md): Debian's
etcd and kube-apiserver v1.35 on loopback, free ports, a private data dir, certificates from
apiserver.pki (the same CA for serving, the admin and the kubelet client), a token per user (an
admin in system:masters, one node in system:nodes), Node,RBAC authorization with
NodeRestriction, the service range in 198.18.0.0/15: the reference the upstream kubelet's test
compares pyapiserver (pyapiserver_plane_testlib) with.

cleanup() stops both and removes the data dir."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import uuid

from apiserver.pki import certificates as pkimod
from cri_testlib import refbin, wait_for
from netkit import random_subnet
from upstream_kubelet_testlib import free_port


def _service_account_keys(private: str, public: str) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    with open(os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(public, "wb") as f:
        f.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))


class ControlPlane:
    def __init__(self, node: str, apiserver_flags: tuple[str, ...] = ()) -> None:
        """apiserver_flags: more flags of kube-apiserver's."""
        self.apiserver_flags = apiserver_flags
        self.dir = tempfile.mkdtemp(prefix="kcp-")
        self.node = node
        self.admin_token = uuid.uuid4().hex
        self.node_token = uuid.uuid4().hex
        self.pki = pkimod.ensure_pki(os.path.join(self.dir, "pki"), "127.0.0.1")
        self.sa_key = os.path.join(self.dir, "pki", "sa.key")
        self.sa_pub = os.path.join(self.dir, "pki", "sa.pub")
        _service_account_keys(self.sa_key, self.sa_pub)
        self.tokens = os.path.join(self.dir, "tokens.csv")
        with open(self.tokens, "w") as f:
            f.write(f'{self.admin_token},admin,uid-admin,"system:masters"\n'
                    f'{self.node_token},system:node:{node},uid-{node},"system:nodes"\n')
        self.etcd_port, self.etcd_peer_port, self.port = free_port(), free_port(), free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.admin_kubeconfig = self._kubeconfig("admin", self.admin_token)
        self.node_kubeconfig = self._kubeconfig("node", self.node_token)
        self.etcd: subprocess.Popen | None = None
        self.apiserver: subprocess.Popen | None = None

    def _kubeconfig(self, name: str, token: str) -> str:
        from kubelet_testlib import write_kubeconfig

        path = os.path.join(self.dir, f"{name}.kubeconfig")
        write_kubeconfig(path, self.url, self.pki.ca_cert, token)
        return path

    def log(self, name: str) -> str:
        with open(os.path.join(self.dir, f"{name}.log"), errors="replace") as f:
            return f.read()

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        with open(os.path.join(self.dir, f"{name}.log"), "ab") as log:
            return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)

    def start(self) -> None:
        etcd_url = f"http://127.0.0.1:{self.etcd_port}"
        self.etcd = self._spawn("etcd", [
            "etcd", "--name", "kcp", "--data-dir", os.path.join(self.dir, "etcd"),
            "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
            "--listen-peer-urls", f"http://127.0.0.1:{self.etcd_peer_port}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.etcd_peer_port}",
            "--initial-cluster", f"kcp=http://127.0.0.1:{self.etcd_peer_port}",
            "--log-level", "warn"])
        self.apiserver = self._spawn("kube-apiserver", [
            refbin("kube-apiserver"), "--etcd-servers", etcd_url,
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
            "--secure-port", str(self.port),
            "--cert-dir", os.path.join(self.dir, "apiserver-certs"),
            "--tls-cert-file", self.pki.server_cert,
            "--tls-private-key-file", self.pki.server_key,
            "--client-ca-file", self.pki.ca_cert, "--token-auth-file", self.tokens,
            "--service-account-key-file", self.sa_pub,
            "--service-account-signing-key-file", self.sa_key,
            "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
            "--authorization-mode", "Node,RBAC", "--enable-admission-plugins",
            "NodeRestriction", "--kubelet-client-certificate", self.pki.kubelet_client_cert,
            "--kubelet-client-key", self.pki.kubelet_client_key,
            "--kubelet-preferred-address-types", "InternalIP,ExternalIP,Hostname",
            "--service-cluster-ip-range", random_subnet(), "--allow-privileged",
            "--profiling=false", "--v", "1", *self.apiserver_flags])
        wait_for(self._ready, 90, interval=0.5,
                 what=lambda: f"kube-apiserver ready: {self.log('kube-apiserver')[-3000:]}")

    def _ready(self) -> bool:
        if self.apiserver.poll() is not None or self.etcd.poll() is not None:
            raise RuntimeError(f"the control plane ended: {self.log('etcd')[-2000:]}\n"
                               f"{self.log('kube-apiserver')[-3000:]}")
        return self.kubectl("get", "--raw", "/readyz").returncode == 0

    def kubectl(self, *args: str, input: str | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess:
        from kubelet_testlib import BIN

        return subprocess.run([shutil.which("kubectl", path=BIN), "--kubeconfig",
                               self.admin_kubeconfig, *args], input=input,
                              capture_output=True, text=True, timeout=timeout)

    def cleanup(self) -> None:
        for proc in (self.apiserver, self.etcd):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
