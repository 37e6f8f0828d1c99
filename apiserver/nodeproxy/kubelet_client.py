"""How the API server reaches a node's kubelet: at the Node's address (InternalIP, then
Hostname, then ExternalIP) and its status.daemonEndpoints port, over TLS with the server's
kubelet client certificate."""
from __future__ import annotations

import ssl

DEFAULT_KUBELET_PORT = 10250
_ADDRESS_ORDER = ("InternalIP", "Hostname", "ExternalIP")


def kubelet_endpoint(node: dict) -> tuple[str, int] | None:
    """(host, port) of the node's kubelet; None when the node has no address yet."""
    status = node.get("status") or {}
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    host = next((addresses[t] for t in _ADDRESS_ORDER if addresses.get(t)), "")
    if not host:
        return None
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    return host, int(port or DEFAULT_KUBELET_PORT)


def client_tls(client_cert: str, client_key: str) -> ssl.SSLContext:
    """Kubelet serving certificates are self-signed by default: like kube-apiserver without
    --kubelet-certificate-authority (and metrics-server with --kubelet-insecure-tls), this does
    not verify them. It presents our client certificate, so that a kubelet can authenticate us."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(client_cert, client_key)
    return context
