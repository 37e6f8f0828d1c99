"""Kubeconfig files as the tests hand them to a kubelet, kubectl or a daemon: one cluster (its
CA inline), one bearer token."""
from __future__ import annotations

import base64
import json


def write_kubeconfig(path: str, server_url: str, ca_file: str, token: str) -> None:
    with open(ca_file, "rb") as f:
        ca = base64.b64encode(f.read()).decode()
    with open(path, "w") as f:
        json.dump({"apiVersion": "v1", "kind": "Config", "current-context": "node",
                   "clusters": [{"name": "c", "cluster": {
                       "server": server_url, "certificate-authority-data": ca}}],
                   "users": [{"name": "n", "user": {"token": token}}],
                   "contexts": [{"name": "node", "context": {"cluster": "c", "user": "n"}}]}, f)
