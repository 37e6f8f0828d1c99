"""A real etcd cluster on loopback for the apiserver tests: Debian's etcd-server, one process per
member with its own name, free ports and data directory, all removed by stop()."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field

ETCD = shutil.which("etcd") or "/usr/bin/etcd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Member:
    name: str
    client_port: int
    peer_port: int
    data_dir: str
    proc: subprocess.Popen | None = None

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"


@dataclass
class EtcdCluster:
    root: str
    members: list[Member] = field(default_factory=list)

    @property
    def servers(self) -> str:
        """The --etcd-servers value naming every member."""
        return ",".join(m.client_url for m in self.members)

    def start(self) -> None:
        token = "pyapiserver-test-" + uuid.uuid4().hex[:8]
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        for m in self.members:
            log = open(os.path.join(self.root, m.name + ".log"), "w")
            m.proc = subprocess.Popen(
                [ETCD, "--name", m.name, "--data-dir", m.data_dir,
                 "--listen-client-urls", m.client_url, "--advertise-client-urls", m.client_url,
                 "--listen-peer-urls", m.peer_url, "--initial-advertise-peer-urls", m.peer_url,
                 "--initial-cluster", initial, "--initial-cluster-token", token,
                 "--initial-cluster-state", "new", "--listen-metrics-urls", "",
                 "--heartbeat-interval", "100", "--election-timeout", "1000"],
                stdout=log, stderr=subprocess.STDOUT)
            log.close()
        for m in self.members:
            wait_healthy(m)

    def stop(self) -> None:
        for m in self.members:
            if m.proc and m.proc.poll() is None:
                m.proc.send_signal(signal.SIGTERM)
        for m in self.members:
            if m.proc:
                try:
                    m.proc.wait(15)
                except subprocess.TimeoutExpired:
                    m.proc.kill()
                    m.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def wait_healthy(member: Member, timeout: float = 30.0) -> None:
    """Polls the member's /health until it reports a leader (the cluster formed)."""
    import urllib.request
    deadline = time.monotonic() + timeout
    while True:
        if member.proc and member.proc.poll() is not None:
            raise RuntimeError(f"etcd {member.name} exited with {member.proc.returncode}")
        try:
            with urllib.request.urlopen(member.client_url + "/health", timeout=2) as r:
                if b'"true"' in r.read():
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"etcd {member.name} not healthy in {timeout}s")
        time.sleep(0.1)


def start_cluster(size: int = 3) -> EtcdCluster:
    root = tempfile.mkdtemp(prefix="pyapiserver-test-etcd-")
    cluster = EtcdCluster(root)
    for i in range(size):
        cluster.members.append(Member(f"m{i}", free_port(), free_port(),
                                      os.path.join(root, f"m{i}.etcd")))
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster
