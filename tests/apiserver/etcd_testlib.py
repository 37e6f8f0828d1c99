"""A real etcd cluster on loopback for the apiserver tests: Debian's etcd-server, one process per
member with its own name, free ports and data directory, all removed by stop(); and
pyapiservers on it."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from testlib.processes import free_port
from testlib.pyapiserver import Server, start_server, stop_server

ETCD = shutil.which("etcd") or "/usr/bin/etcd"


@dataclass(frozen=True)
class Tls:
    """PEM files: a CA, etcd's serving pair (IP SAN 127.0.0.1) and a client pair it signed."""
    ca: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str


def make_tls(directory: str) -> Tls:
    import datetime
    import ipaddress
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write(stem: str, cert: x509.Certificate, key) -> tuple[str, str]:
        paths = (os.path.join(directory, stem + ".crt"), os.path.join(directory, stem + ".key"))
        with open(paths[0], "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(paths[1], "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        return paths

    def issue(cn: str, ca_key, usage, san=None):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder().subject_name(name(cn))
                   .issuer_name(name("etcd-test-ca")).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                                  critical=True)
                   .add_extension(x509.ExtendedKeyUsage(usage), critical=False))
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return builder.sign(ca_key, hashes.SHA256()), key

    os.makedirs(directory, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (x509.CertificateBuilder().subject_name(name("etcd-test-ca"))
               .issuer_name(name("etcd-test-ca")).public_key(ca_key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .sign(ca_key, hashes.SHA256()))
    ca_path, _ = write("ca", ca_cert, ca_key)
    server = write("server", *issue("etcd", ca_key, [ExtendedKeyUsageOID.SERVER_AUTH,
                                                     ExtendedKeyUsageOID.CLIENT_AUTH],
                                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                     x509.DNSName("localhost")]))
    client = write("client", *issue("pyapiserver", ca_key, [ExtendedKeyUsageOID.CLIENT_AUTH]))
    return Tls(ca_path, server[0], server[1], client[0], client[1])


@dataclass
class Member:
    name: str
    client_port: int
    peer_port: int
    data_dir: str
    proc: subprocess.Popen | None = None
    tls: Tls | None = None
    argv: list[str] = field(default_factory=list)  # its first start's, which a restart repeats

    @property
    def client_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"


@dataclass
class EtcdCluster:
    root: str
    members: list[Member] = field(default_factory=list)
    tls: Tls | None = None

    @property
    def servers(self) -> str:
        """The --etcd-servers value naming every member."""
        return ",".join(m.client_url for m in self.members)

    def start(self) -> None:
        token = "pyapiserver-test-" + uuid.uuid4().hex[:8]
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        for m in self.members:
            m.argv = [
                ETCD, "--name", m.name, "--data-dir", m.data_dir,
                "--listen-client-urls", m.client_url, "--advertise-client-urls", m.client_url,
                "--listen-peer-urls", m.peer_url, "--initial-advertise-peer-urls", m.peer_url,
                "--initial-cluster", initial, "--initial-cluster-token", token,
                "--initial-cluster-state", "new", "--listen-metrics-urls", "",
                "--heartbeat-interval", "100", "--election-timeout", "1000",
                *(("--cert-file", m.tls.server_cert, "--key-file", m.tls.server_key,
                   "--trusted-ca-file", m.tls.ca, "--client-cert-auth") if m.tls else ())]
            self._launch(m)
        for m in self.members:
            wait_healthy(m)

    def _launch(self, m: Member) -> None:
        with open(os.path.join(self.root, m.name + ".log"), "a") as log:
            m.proc = subprocess.Popen(m.argv, stdout=log, stderr=subprocess.STDOUT)

    def stop_member(self, m: Member) -> None:
        m.proc.send_signal(signal.SIGTERM)
        m.proc.wait(15)

    def restart_member(self, m: Member) -> None:
        """A stopped member again, from its data dir (etcd then ignores the --initial-*)."""
        self._launch(m)
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
    import ssl
    import urllib.request
    context = None
    if member.tls:
        context = ssl.create_default_context(cafile=member.tls.ca)
        context.load_cert_chain(member.tls.client_cert, member.tls.client_key)
    deadline = time.monotonic() + timeout
    while True:
        if member.proc and member.proc.poll() is not None:
            raise RuntimeError(f"etcd {member.name} exited with {member.proc.returncode}")
        try:
            with urllib.request.urlopen(member.client_url + "/health", timeout=2,
                                        context=context) as r:
                if b'"true"' in r.read():
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"etcd {member.name} not healthy in {timeout}s")
        time.sleep(0.1)


def start_cluster(size: int = 3, tls: bool = False) -> EtcdCluster:
    """`size` members on loopback; with tls, clients must present a certificate of its CA
    (cluster.tls), as kube-apiserver's --etcd-certfile does."""
    root = tempfile.mkdtemp(prefix="pyapiserver-test-etcd-")
    cluster = EtcdCluster(root)
    try:
        cluster.tls = make_tls(os.path.join(root, "pki")) if tls else None
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    for i in range(size):
        cluster.members.append(Member(f"m{i}", free_port(), free_port(),
                                      os.path.join(root, f"m{i}.etcd"), tls=cluster.tls))
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster


def server_on(cluster: EtcdCluster, pki_from: Server | None = None,
              extra: tuple[str, ...] = (), members: list[Member] | None = None) -> Server:
    """A pyapiserver on the cluster (on `members` alone when given); with pki_from, sharing
    that server's CA, keys and token file, as the servers of one control plane do."""
    servers = ",".join(m.client_url for m in members) if members else cluster.servers
    if pki_from is None:
        return start_server(["--etcd-servers", servers, *extra])
    data_dir = tempfile.mkdtemp(prefix="pyapiserver-test-")
    shutil.copytree(os.path.join(pki_from.data_dir, "pki"), os.path.join(data_dir, "pki"))
    shutil.copy(pki_from.token_file, os.path.join(data_dir, "tokens.csv"))
    server = Server(data_dir, os.path.join(data_dir, "tokens.csv"),
                    ("--etcd-servers", servers, *extra))
    try:
        server.start()
    except BaseException:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise
    return server


@contextmanager
def two_servers_on(cluster: EtcdCluster) -> Iterator[tuple[Server, Server]]:
    """Two pyapiservers of one control plane on the cluster, stopped (and their data dirs
    removed) when the block ends, a failed start of the second included."""
    first = server_on(cluster)
    try:
        second = server_on(cluster, pki_from=first)
    except BaseException:
        stop_server(first)
        raise
    try:
        yield first, second
    finally:
        stop_server(second)
        stop_server(first)
