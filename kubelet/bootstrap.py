"""The kubelet's client certificate from the cluster (TLS bootstrapping, as a kubeadm join):
with --bootstrap-kubeconfig and no usable --kubeconfig, a new key and a certificates.k8s.io/v1
CertificateSigningRequest for CN=system:node:NAME, O=system:nodes with the signer
kubernetes.io/kube-apiserver-client-kubelet, made with the bootstrap credentials (a bootstrap
token); once the controller manager approved and signed it, the key and certificate are kept in
<cert-dir>/kubelet-client-<time>.pem, linked from kubelet-client-current.pem, and --kubeconfig
is written to use that file. With --rotate-certificates a thread requests the next certificate
with the current one at a random point between 70 % and 90 % of its life (the kubelet's
certificate manager) and loads it into the connection's TLS context: new connections present
it, nothing restarts. With --rotate-server-certificates the kubelet's serving certificate is
requested the same way (signer kubernetes.io/kubelet-serving, the node's name and IP as SANs,
kept as kubelet-server-current.pem); the controller manager does not approve those by itself:
an administrator or an approver does, and meanwhile the kubelet serves its self-signed one."""
from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import logging
import os
import random
import ssl
import threading
import time
from dataclasses import dataclass

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kubeapi.kubeconfig import Connection, KubeconfigError, load as load_kubeconfig
from kubeapi.restclient import ApiClient
from kubeapi.status import ApiError
from kubelet import VERSION

log = logging.getLogger("kubelet.bootstrap")

SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
SERVING_SIGNER = "kubernetes.io/kubelet-serving"
CSR_PATH = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
CURRENT = "kubelet-client-current.pem"
SERVING_CURRENT = "kubelet-server-current.pem"
WAIT_FOR_CERTIFICATE = 900.0     # the kubelet waits up to 15 minutes for its first one
POLL = 0.5


class BootstrapError(Exception):
    """The certificate could not be had: denied, failed, or not issued in time."""


@dataclass
class CertFiles:
    cert_dir: str
    kind: str = "client"    # or "server": kubelet-<kind>-current.pem

    @property
    def current(self) -> str:
        return os.path.join(self.cert_dir, f"kubelet-{self.kind}-current.pem")

    def load(self) -> x509.Certificate | None:
        """The current certificate if there is one and it is still valid."""
        try:
            with open(self.current, "rb") as f:
                cert = x509.load_pem_x509_certificate(f.read())
        except (OSError, ValueError):
            return None
        return cert if cert.not_valid_after_utc > _now() else None

    def store(self, cert_pem: bytes, key_pem: bytes) -> str:
        """Writes the pair as kubelet-client-<time>.pem and points the link at it."""
        os.makedirs(self.cert_dir, mode=0o700, exist_ok=True)
        stamp = _now().strftime("%Y-%m-%d-%H-%M-%S-%f")
        path = os.path.join(self.cert_dir, f"kubelet-{self.kind}-{stamp}.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(cert_pem + key_pem)
        link = self.current + ".tmp"
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(os.path.basename(path), link)
        os.replace(link, self.current)
        return path


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _new_key() -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    return key, key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption())


@dataclass(frozen=True)
class Serving:
    """What a serving certificate names: the node's addresses (DNS names and IPs)."""

    dns_names: tuple[str, ...]
    ips: tuple[str, ...]


def _csr_object(node_name: str, key: ec.EllipticCurvePrivateKey,
                serving: Serving | None = None) -> dict:
    builder = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([
                   x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                   x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node_name}")])))
    if serving is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName(n) for n in serving.dns_names]
            + [x509.IPAddress(ipaddress.ip_address(a)) for a in serving.ips]), critical=False)
    request = builder.sign(key, hashes.SHA256())
    pem = request.public_bytes(serialization.Encoding.PEM)
    # a name from the public key, subject and usages, as the kubelet's digestedName: a create
    # retried after a lost answer meets its own request (409) instead of making another
    usages = ["digital signature", "client auth" if serving is None else "server auth"]
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashlib.sha512(public + f"system:node:{node_name}|{'|'.join(usages)}".encode()
                            ).digest()
    name = "node-csr-" + base64.urlsafe_b64encode(digest).decode().rstrip("=")[:43]
    return {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": name},
            "spec": {"request": base64.b64encode(pem).decode(),
                     "signerName": SIGNER if serving is None else SERVING_SIGNER,
                     "usages": usages}}


def request_certificate(client: ApiClient, node_name: str, stop: threading.Event,
                        timeout: float = WAIT_FOR_CERTIFICATE,
                        serving: Serving | None = None) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) of a new CSR once it is approved and issued: a client
    certificate, or a serving one for these addresses."""
    key, key_pem = _new_key()
    csr = _csr_object(node_name, key, serving)
    name = csr["metadata"]["name"]
    try:
        client.create(CSR_PATH, csr, retries=3)
    except ApiError as e:
        if e.code != 409:
            raise BootstrapError(f"certificate signing request {name}: {e}") from None
    log.info("certificate signing request %s made for %s", name, node_name)
    deadline = time.monotonic() + timeout
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            status = client.get(f"{CSR_PATH}/{name}").get("status") or {}
        except ApiError as e:
            log.warning("certificate signing request %s: %s", name, e)
            status = {}
        for condition in status.get("conditions") or []:
            if condition.get("type") in ("Denied", "Failed") and \
                    condition.get("status", "True") == "True":
                raise BootstrapError(f"certificate signing request {name} "
                                     f"{condition['type'].lower()}: "
                                     f"{condition.get('message') or condition.get('reason')}")
        if status.get("certificate"):
            return base64.b64decode(status["certificate"]), key_pem
        stop.wait(POLL)
    raise BootstrapError(f"certificate signing request {name}: no certificate issued within "
                         f"{int(timeout)} s")


def _write_kubeconfig(path: str, server: str, ca_pem: bytes, cert_file: str) -> None:
    """--kubeconfig naming the current pair by its link, so that rotation needs no rewrite."""
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "default-context",
              "clusters": [{"name": "default-cluster", "cluster": {
                  "server": server,
                  "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
              "users": [{"name": "default-auth", "user": {
                  "client-certificate": cert_file, "client-key": cert_file}}],
              "contexts": [{"name": "default-context", "context": {
                  "cluster": "default-cluster", "namespace": "default",
                  "user": "default-auth"}}]}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(config, f)
    os.replace(tmp, path)


def _kubeconfig_usable(path: str) -> bool:
    try:
        load_kubeconfig(path)
        return True
    except KubeconfigError:
        return False


def bootstrap(bootstrap_kubeconfig: str, kubeconfig: str, cert_dir: str, node_name: str,
              stop: threading.Event) -> None:
    """Makes --kubeconfig usable: kept if it loads and its certificate (if it is ours) is
    valid, else a certificate is requested with the bootstrap credentials."""
    files = CertFiles(cert_dir)
    if os.path.exists(kubeconfig) and _kubeconfig_usable(kubeconfig):
        if not os.path.exists(files.current) or files.load() is not None:
            return
    boot = load_kubeconfig(bootstrap_kubeconfig)
    if files.load() is None:
        client = ApiClient(boot, f"pykubelet/{VERSION} bootstrap")
        try:
            cert_pem, key_pem = request_certificate(client, node_name, stop)
        finally:
            client.close()
        files.store(cert_pem, key_pem)
        log.info("client certificate of %s issued", node_name)
    _write_kubeconfig(kubeconfig, boot.server, boot.ca_pem, files.current)


def rotation_deadline(cert: x509.Certificate, rng: random.Random) -> datetime.datetime:
    """A random point in 70-90 % of the certificate's life, as the kubelet's."""
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    return start + (end - start) * (0.7 + 0.2 * rng.random())


class CertificateRotator:
    """--rotate-certificates: renews the client certificate in cert_dir before it expires,
    asking with the current one (the selfnodeclient approval), and loads the new one into
    conn.context. --rotate-server-certificates (serving set): the same for the serving
    certificate, loaded into the kubelet server's context; until someone approves its first
    request the server keeps its self-signed certificate."""

    def __init__(self, conn: Connection, cert_dir: str, node_name: str,
                 serving: Serving | None = None,
                 server_context: ssl.SSLContext | None = None) -> None:
        self.conn = conn
        self.files = CertFiles(cert_dir, "client" if serving is None else "server")
        self.node_name = node_name
        self.serving = serving
        self.context = conn.context if serving is None else server_context
        self.rng = random.Random()

    def rotate_once(self, stop: threading.Event) -> None:
        client = ApiClient(self.conn, f"pykubelet/{VERSION} certificate rotation")
        try:
            cert_pem, key_pem = request_certificate(client, self.node_name, stop,
                                                    serving=self.serving)
        finally:
            client.close()
        path = self.files.store(cert_pem, key_pem)
        self.context.load_cert_chain(path, path)
        log.info("%s certificate of %s rotated", self.files.kind, self.node_name)

    def run(self, stop: threading.Event) -> None:
        delay = 1.0
        while not stop.is_set():
            cert = self.files.load()
            if cert is None and self.serving is None:
                log.warning("no valid client certificate in %s to rotate", self.files.cert_dir)
                wait = 60.0
            elif cert is None:
                wait = 0.0      # a first serving certificate
            else:
                wait = (rotation_deadline(cert, self.rng) - _now()).total_seconds()
            if wait > 0:
                stop.wait(min(wait, 3600.0))
                continue
            try:
                self.rotate_once(stop)
                delay = 1.0
            except (BootstrapError, ApiError, OSError, ssl.SSLError) as e:
                log.warning("client certificate rotation failed, retrying in %.0f s: %s",
                            delay, e)
                stop.wait(delay)
                delay = min(delay * 2, 300.0)
