"""The server's PKI, generated on first start under <data-dir>/pki: a self-signed CA, the
serving certificate, the admin client certificate (O=system:masters) and the client
certificate the server shows kubelets when it proxies pods/log."""
from __future__ import annotations

import datetime
import ipaddress
import os
import socket
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = datetime.timedelta(days=3650)


@dataclass(frozen=True)
class Pki:
    directory: str

    def path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    @property
    def ca_cert(self) -> str:
        return self.path("ca.crt")

    @property
    def server_cert(self) -> str:
        return self.path("apiserver.crt")

    @property
    def server_key(self) -> str:
        return self.path("apiserver.key")

    @property
    def admin_cert(self) -> str:
        return self.path("admin.crt")

    @property
    def admin_key(self) -> str:
        return self.path("admin.key")

    @property
    def kubelet_client_cert(self) -> str:
        return self.path("apiserver-kubelet-client.crt")

    @property
    def kubelet_client_key(self) -> str:
        return self.path("apiserver-kubelet-client.key")


def _write(path: str, data: bytes, private: bool) -> None:
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(cn: str, org: str = "") -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)] if org else []
    return x509.Name(attrs + [x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(ca_key, ca_name: x509.Name, subject: x509.Name, key, *, server: bool,
           sans: list[x509.GeneralName] | None = None) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + _VALIDITY)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False,
                                            False), critical=True)
               .add_extension(x509.ExtendedKeyUsage(
                   [ExtendedKeyUsageOID.SERVER_AUTH if server else
                    ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def server_sans(bind_address: str, service_ip: str = "") -> list[x509.GeneralName]:
    """The names pods reach the server by too: the kubernetes Service's ClusterIP and DNS
    names, as kube-apiserver's serving certificate holds them."""
    names: list[x509.GeneralName] = [x509.DNSName("localhost"),
                                     x509.DNSName(socket.gethostname()),
                                     x509.DNSName("kubernetes"),
                                     x509.DNSName("kubernetes.default"),
                                     x509.DNSName("kubernetes.default.svc"),
                                     x509.DNSName("kubernetes.default.svc.cluster.local"),
                                     x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                     x509.IPAddress(ipaddress.ip_address("::1"))]
    if bind_address not in ("", "0.0.0.0", "::", "127.0.0.1", "::1"):
        names.append(x509.IPAddress(ipaddress.ip_address(bind_address)))
    if service_ip:
        names.append(x509.IPAddress(ipaddress.ip_address(service_ip)))
    return names


def ensure_pki(directory: str, bind_address: str, service_ip: str = "") -> Pki:
    """Creates whatever is missing; keeps what exists, so clients keep trusting the CA."""
    pki = Pki(directory)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    ca_key_path = pki.path("ca.key")
    if os.path.exists(ca_key_path) and os.path.exists(pki.ca_cert):
        with open(ca_key_path, "rb") as f:
            ca_key = serialization.load_pem_private_key(f.read(), None)
        with open(pki.ca_cert, "rb") as f:
            ca_name = x509.load_pem_x509_certificate(f.read()).subject
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = _name(f"pyapiserver-ca@{int(datetime.datetime.now().timestamp())}")
        now = datetime.datetime.now(datetime.timezone.utc)
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(minutes=5))
              .not_valid_after(now + _VALIDITY)
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .add_extension(x509.KeyUsage(True, False, True, False, False, True, False, False,
                                           False), critical=True)
              .sign(ca_key, hashes.SHA256()))
        _write(ca_key_path, _key_pem(ca_key), True)
        _write(pki.ca_cert, ca.public_bytes(serialization.Encoding.PEM), False)
        for stale in (pki.server_cert, pki.admin_cert, pki.kubelet_client_cert):
            if os.path.exists(stale):
                os.unlink(stale)
    for cert, key, subject, server in (
            (pki.server_cert, pki.server_key, _name("kube-apiserver"), True),
            (pki.admin_cert, pki.admin_key, _name("kubernetes-admin", "system:masters"), False),
            (pki.kubelet_client_cert, pki.kubelet_client_key,
             _name("kube-apiserver-kubelet-client", "system:masters"), False)):
        if os.path.exists(cert) and os.path.exists(key):
            continue
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        leaf = _issue(ca_key, ca_name, subject, leaf_key, server=server,
                      sans=server_sans(bind_address, service_ip) if server else None)
        _write(key, _key_pem(leaf_key), True)
        _write(cert, leaf.public_bytes(serialization.Encoding.PEM), False)
    return pki
