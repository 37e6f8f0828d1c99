"""The kubelet's serving certificate when none is configured: self-signed, kept as
<root-dir>/pki/kubelet.crt and kubelet.key (as the kubelet does), for the node's name and IP."""
from __future__ import annotations

import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_VALIDITY = datetime.timedelta(days=365)


def ensure(pki_dir: str, node_name: str, node_ip: str) -> tuple[str, str]:
    """(certificate path, key path), made if missing."""
    cert_path = os.path.join(pki_dir, "kubelet.crt")
    key_path = os.path.join(pki_dir, "kubelet.key")
    if os.path.exists(cert_path) and os.path.exists(key_path):
        return cert_path, key_path
    os.makedirs(pki_dir, mode=0o700, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    stamp = int(datetime.datetime.now().timestamp())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{node_name}@{stamp}")])
    sans: list[x509.GeneralName] = [x509.DNSName(node_name), x509.DNSName("localhost"),
                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    if node_ip and node_ip != "127.0.0.1":
        sans.append(x509.IPAddress(ipaddress.ip_address(node_ip)))
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + _VALIDITY)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path
