"""The real control plane for the upstream kubelet's test (../shared/refbin/README.md): Debian's
etcd and kube-apiserver v1.35 on loopback, free ports, a private data dir, certificates from
apiserver.pki (the same CA for serving, the admin and the kubelet client), a token per user (an
admin in system:masters, one node in system:nodes), Node,RBAC authorization with
NodeRestriction, the service range in 198.18.0.0/15: the reference the upstream kubelet's test
compares pyapiserver (tests/cri/pyapiserver_plane_testlib) with, and the tests that hold
pyapiserver's answers to kube's (kube_reference).

cleanup() stops both and removes the data dir."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid

from apiserver.pki import certificates as pkimod
from netkit import random_subnet
from testlib.kubeconfigs import write_kubeconfig
from testlib.processes import free_port, stop
from testlib.reference_plane import etcd_argv, kube_apiserver_argv, service_account_keys
from testlib.waiting import wait_for

BIN = os.path.dirname(sys.executable)


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
        service_account_keys(self.sa_key, self.sa_pub)
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
        self.etcd = self._spawn("etcd", etcd_argv("kcp", os.path.join(self.dir, "etcd"),
                                                  self.etcd_port, self.etcd_peer_port))
        self.apiserver = self._spawn("kube-apiserver", kube_apiserver_argv(
            f"http://127.0.0.1:{self.etcd_port}", "127.0.0.1", self.port,
            os.path.join(self.dir, "apiserver-certs"), self.pki, self.tokens, self.sa_key,
            self.sa_pub, random_subnet(), *self.apiserver_flags))
        wait_for(self._ready, 90, interval=0.5,
                 what=lambda: f"kube-apiserver ready: {self.log('kube-apiserver')[-3000:]}")

    def _ready(self) -> bool:
        if self.apiserver.poll() is not None or self.etcd.poll() is not None:
            raise RuntimeError(f"the control plane ended: {self.log('etcd')[-2000:]}\n"
                               f"{self.log('kube-apiserver')[-3000:]}")
        return self.kubectl("get", "--raw", "/readyz").returncode == 0

    def kubectl(self, *args: str, input: str | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([shutil.which("kubectl", path=BIN), "--kubeconfig",
                               self.admin_kubeconfig, *args], input=input,
                              capture_output=True, text=True, timeout=timeout)

    def cleanup(self) -> None:
        for proc in (self.apiserver, self.etcd):
            stop(proc)
        shutil.rmtree(self.dir, ignore_errors=True)
