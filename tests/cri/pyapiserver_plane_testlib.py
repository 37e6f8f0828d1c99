"""pyapiserver as the upstream kubelet's control plane, with ControlPlane's interface
(testlib/control_plane): an admin kubeconfig for kubectl, a node token in system:nodes, the CA
the kubelet trusts for the API server's client certificate. cleanup() stops it and removes its
data dir."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid

from testlib.kubeconfigs import write_kubeconfig
from testlib.pyapiserver import Server


class PyControlPlane:
    def __init__(self, node: str) -> None:
        self.dir = tempfile.mkdtemp(prefix="pcp-")
        self.node = node
        self.node_token = uuid.uuid4().hex
        tokens = os.path.join(self.dir, "tokens.csv")
        with open(tokens, "w") as f:
            f.write(f'{uuid.uuid4().hex},admin,uid-admin,"system:masters"\n'
                    f'{self.node_token},system:node:{node},uid-{node},"system:nodes"\n')
        self.server = Server(self.dir, tokens)
        self.node_kubeconfig = os.path.join(self.dir, "node.kubeconfig")

    @property
    def ca_cert(self) -> str:
        return os.path.join(self.dir, "pki", "ca.crt")

    def start(self) -> None:
        self.server.start()
        write_kubeconfig(self.node_kubeconfig, self.server.url, self.ca_cert, self.node_token)

    def kubectl(self, *args: str, input: str | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess:
        return self.server.kubectl(*args, check=False, input=input, timeout=timeout)

    def cleanup(self) -> None:
        self.server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

