"""kubeconfig files: the current context's server, CA and credentials (bearer token or token
file, client certificate and key, as files or embedded data), turned into what the REST client
needs: a base URL, an ssl.SSLContext and an Authorization header."""
from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass

import yaml


class KubeconfigError(ValueError):
    pass


@dataclass
class Connection:
    server: str                     # https://host:port, no trailing slash
    context: ssl.SSLContext         # verifies the server, presents our client certificate
    plain_context: ssl.SSLContext   # verifies the server only (to ask on someone else's behalf)
    token: str = ""                 # bearer token, "" when a client certificate authenticates
    ca_pem: bytes = b""             # the cluster CA, for the kubelet's own client-CA default


def load(path: str) -> Connection:
    try:
        with open(path) as f:
            raw = yaml.safe_load(f) or {}
    except OSError as e:
        raise KubeconfigError(f"--kubeconfig: cannot read {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise KubeconfigError(f"--kubeconfig: {path} is not YAML: "
                              f"{str(e).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise KubeconfigError(f"--kubeconfig: {path} is not a kubeconfig")
    base = os.path.dirname(os.path.abspath(path))
    context_name = raw.get("current-context") or ""
    context = _named(raw, "contexts", "context", context_name, path)
    cluster = _named(raw, "clusters", "cluster", context.get("cluster", ""), path)
    user = _named(raw, "users", "user", context.get("user", ""), path) \
        if context.get("user") else {}
    server = str(cluster.get("server") or "").rstrip("/")
    if not server.startswith("https://"):
        raise KubeconfigError(f"--kubeconfig: {path}: cluster server {server!r} must be an "
                              "https:// URL")
    ca_pem = _data_or_file(cluster, "certificate-authority", base, path)
    insecure = bool(cluster.get("insecure-skip-tls-verify"))
    ctx = _server_context(ca_pem, insecure)
    if any(k in user for k in ("exec", "auth-provider")):
        raise KubeconfigError(f"--kubeconfig: {path}: exec and auth-provider credentials are "
                              "not supported; use a token or a client certificate")
    token = str(user.get("token") or "")
    if not token and user.get("tokenFile"):
        token_path = _resolve(user["tokenFile"], base)
        try:
            with open(token_path) as f:
                token = f.read().strip()
        except OSError as e:
            raise KubeconfigError(f"--kubeconfig: tokenFile {token_path}: {e.strerror}") from None
    cert = _data_or_file(user, "client-certificate", base, path)
    key = _data_or_file(user, "client-key", base, path)
    if bool(cert) != bool(key):
        raise KubeconfigError(f"--kubeconfig: {path}: client-certificate and client-key come "
                              "together")
    if cert:
        _load_cert_chain(ctx, cert, key)
    return Connection(server, ctx, _server_context(ca_pem, insecure), token, ca_pem)


def _server_context(ca_pem: bytes, insecure: bool) -> ssl.SSLContext:
    if insecure:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if ca_pem:
        return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=ca_pem.decode())
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH)


def _named(raw: dict, section: str, key: str, name: str, path: str) -> dict:
    for entry in raw.get(section) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            return entry.get(key) or {}
    entries = raw.get(section) or []
    if not name and len(entries) == 1 and isinstance(entries[0], dict):
        return entries[0].get(key) or {}
    raise KubeconfigError(f"--kubeconfig: {path}: no {key} named {name!r}")


def _resolve(value: str, base: str) -> str:
    return value if os.path.isabs(value) else os.path.join(base, value)


def _data_or_file(obj: dict, name: str, base: str, path: str) -> bytes:
    if obj.get(f"{name}-data"):
        try:
            return base64.b64decode(obj[f"{name}-data"])
        except ValueError:
            raise KubeconfigError(f"--kubeconfig: {path}: {name}-data is not base64") from None
    if obj.get(name):
        file = _resolve(obj[name], base)
        try:
            with open(file, "rb") as f:
                return f.read()
        except OSError as e:
            raise KubeconfigError(f"--kubeconfig: {name} {file}: {e.strerror}") from None
    return b""


def _load_cert_chain(ctx: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    # ssl loads certificates from files only: a private temp dir, gone right after.
    with tempfile.TemporaryDirectory(prefix="kubeconfig-cert-") as tmp:
        cert_path, key_path = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
        for p, data in ((cert_path, cert), (key_path, key)):
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        try:
            ctx.load_cert_chain(cert_path, key_path)
        except ssl.SSLError as e:
            raise KubeconfigError(f"--kubeconfig: client certificate or key unusable: "
                                  f"{e.reason}") from None
