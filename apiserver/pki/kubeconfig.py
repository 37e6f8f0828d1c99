"""<data-dir>/admin.kubeconfig: the CA and the admin client certificate, embedded, so that
`kubectl --kubeconfig <data-dir>/admin.kubeconfig` works with no other file."""
from __future__ import annotations

import base64
import os

import yaml

from .certificates import Pki


def _b64(path: str) -> str:
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode()


def write_admin_kubeconfig(path: str, server_url: str, pki: Pki) -> None:
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "pyapiserver", "cluster": {
            "server": server_url, "certificate-authority-data": _b64(pki.ca_cert)}}],
        "users": [{"name": "admin", "user": {
            "client-certificate-data": _b64(pki.admin_cert),
            "client-key-data": _b64(pki.admin_key)}}],
        "contexts": [{"name": "admin@pyapiserver",
                      "context": {"cluster": "pyapiserver", "user": "admin"}}],
        "current-context": "admin@pyapiserver",
        "preferences": {},
    }
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    os.replace(tmp, path)
