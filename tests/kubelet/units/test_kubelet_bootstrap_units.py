"""kubelet/bootstrap.py without a cluster: the CSRs it makes (subject, signer, usages, SANs), the
rotation point of a certificate, the certificate files and their link, and the kubelet's one
line when the bootstrap cannot work. The whole flow against the real controller manager:
tests/cluster/test_cluster.py."""
from __future__ import annotations

import base64
import datetime
import os
import random
import subprocess
import sys
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kubelet import bootstrap

PYKUBELET = os.path.join(os.path.dirname(sys.executable), "pykubelet")


def _request(csr: dict) -> x509.CertificateSigningRequest:
    return x509.load_pem_x509_csr(base64.b64decode(csr["spec"]["request"]))


def test_a_client_csr_is_the_node_user_for_the_kubelet_client_signer():
    key = ec.generate_private_key(ec.SECP256R1())
    csr = bootstrap._csr_object("node-x", key)
    assert csr["metadata"]["name"].startswith("node-csr-")
    assert csr["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"
    assert csr["spec"]["usages"] == ["digital signature", "client auth"]
    request = _request(csr)
    assert request.subject.rfc4514_string() == "CN=system:node:node-x,O=system:nodes"
    assert request.is_signature_valid
    # the same key asks under the same name: a retried create meets its own request
    assert bootstrap._csr_object("node-x", key)["metadata"]["name"] == csr["metadata"]["name"]


def test_a_serving_csr_names_the_node_and_its_ip():
    key = ec.generate_private_key(ec.SECP256R1())
    csr = bootstrap._csr_object("node-x", key, bootstrap.Serving(("node-x",), ("198.18.7.11",)))
    assert csr["spec"]["signerName"] == "kubernetes.io/kubelet-serving"
    assert csr["spec"]["usages"] == ["digital signature", "server auth"]
    sans = _request(csr).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["node-x"]
    assert [str(a) for a in sans.get_values_for_type(x509.IPAddress)] == ["198.18.7.11"]


def _certificate(start: datetime.datetime, days: float) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "system:node:node-x")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=days))
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM,
                              serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption()))


def test_the_rotation_point_is_between_70_and_90_percent_of_the_life():
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    cert = x509.load_pem_x509_certificate(_certificate(start, 100)[0])
    points = [bootstrap.rotation_deadline(cert, random.Random(seed)) for seed in range(200)]
    assert min(points) >= start + datetime.timedelta(days=70)
    assert max(points) <= start + datetime.timedelta(days=90)
    assert max(points) - min(points) > datetime.timedelta(days=15)


def test_stored_pairs_are_private_and_the_link_follows_the_newest(tmp_path):
    files = bootstrap.CertFiles(str(tmp_path / "pki"))
    assert files.load() is None
    now = datetime.datetime.now(datetime.timezone.utc)
    first = files.store(*_certificate(now - datetime.timedelta(days=1), 2))
    second = files.store(*_certificate(now - datetime.timedelta(hours=1), 2))
    assert first != second and os.stat(second).st_mode & 0o777 == 0o600
    assert os.readlink(files.current) == os.path.basename(second)
    assert files.load() is not None
    files.store(*_certificate(now - datetime.timedelta(days=3), 1))    # expired: not usable
    assert files.load() is None
    assert os.path.basename(bootstrap.CertFiles(str(tmp_path), "server").current) == \
        "kubelet-server-current.pem"


def test_bootstrap_keeps_a_kubeconfig_that_works(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n"
                          "- name: c\n  cluster: {server: 'https://198.18.7.1:6443'}\n"
                          "contexts:\n- name: c\n  context: {cluster: c, user: u}\n"
                          "users:\n- name: u\n  user: {token: abc}\n")
    before = kubeconfig.read_text()
    # the bootstrap kubeconfig is not even read: nothing to do
    bootstrap.bootstrap(str(tmp_path / "absent"), str(kubeconfig), str(tmp_path / "pki"),
                        "node-x", threading.Event())
    assert kubeconfig.read_text() == before


@pytest.mark.parametrize("args, message", [
    (["--bootstrap-kubeconfig", "/nonexistent/b"],
     "pykubelet: --bootstrap-kubeconfig: needs --kubeconfig, the file to write\n"),
    (["--bootstrap-kubeconfig", "/nonexistent/b", "--kubeconfig", "/nonexistent/k"],
     "pykubelet: --kubeconfig: cannot read /nonexistent/b: No such file or directory\n"),
])
def test_bad_bootstrap_flags_are_one_line(tmp_path, args, message):
    done = subprocess.run([PYKUBELET, "--hostname-override", "x", "--root-dir",
                           str(tmp_path / "root"), *args], capture_output=True, text=True,
                          timeout=60)
    assert (done.returncode, done.stderr) == (1, message)
