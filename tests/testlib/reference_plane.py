"""The real control plane's processes as the tests run them (Debian's etcd, kube-apiserver of
the reference binaries): their command lines on loopback or a test's own address, and the
ServiceAccount signing keys kube-apiserver and kube-controller-manager share."""
from __future__ import annotations

import os

from testlib.refbin import refbin


def service_account_keys(private: str, public: str) -> None:
    """A new EC key pair: private (PKCS8, mode 0600) and public (SubjectPublicKeyInfo), PEM."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    with open(os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(public, "wb") as f:
        f.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))


def etcd_argv(name: str, data_dir: str, client_port: int, peer_port: int) -> list[str]:
    """A one-member etcd on 127.0.0.1."""
    client_url = f"http://127.0.0.1:{client_port}"
    peer_url = f"http://127.0.0.1:{peer_port}"
    return ["etcd", "--name", name, "--data-dir", data_dir,
            "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
            "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", f"{name}={peer_url}", "--log-level", "warn"]


def kube_apiserver_argv(etcd_url: str, address: str, port: int, cert_dir: str, pki,
                        tokens: str, sa_key: str, sa_pub: str, service_range: str,
                        *flags: str) -> list[str]:
    """kube-apiserver serving on address:port with pki's certificates (apiserver.pki's Pki),
    token file authentication, Node,RBAC authorization with NodeRestriction, and these flags
    more."""
    return [
        refbin("kube-apiserver"), "--etcd-servers", etcd_url,
        "--bind-address", address, "--advertise-address", address,
        "--secure-port", str(port), "--cert-dir", cert_dir,
        "--tls-cert-file", pki.server_cert, "--tls-private-key-file", pki.server_key,
        "--client-ca-file", pki.ca_cert, "--token-auth-file", tokens,
        "--service-account-key-file", sa_pub, "--service-account-signing-key-file", sa_key,
        "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
        "--authorization-mode", "Node,RBAC", "--enable-admission-plugins", "NodeRestriction",
        "--kubelet-client-certificate", pki.kubelet_client_cert,
        "--kubelet-client-key", pki.kubelet_client_key,
        "--kubelet-preferred-address-types", "InternalIP,ExternalIP,Hostname",
        "--service-cluster-ip-range", service_range, "--allow-privileged",
        "--profiling=false", "--v", "1", *flags]
