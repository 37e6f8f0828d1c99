"""The `kubernetes` Service in `default` and its Endpoints and EndpointSlice, pointing at this
API server, as kube-apiserver's master endpoint reconciler keeps them; and the service flags."""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from kubeapi.status import ApiError

from .registry.endpointslices import SERVICE_NAME_LABEL
from .registry.store import Store

NAME, NAMESPACE = "kubernetes", "default"
# TEST-NET-1: connecting a UDP socket there picks the outgoing address and sends nothing.
_PROBE_ADDRESS = "192.0.2.1"


@dataclass(frozen=True)
class ServiceFlags:
    """kube-apiserver's --service-cluster-ip-range, --service-node-port-range and
    --advertise-address (empty: the bind address, or the host's outgoing one)."""
    cluster_ip_range: str = "10.96.0.0/12"
    node_port_range: str = "30000-32767"
    advertise_address: str = ""


def advertise_address(flag: str, bind_address: str) -> str:
    if flag:
        try:
            return str(ipaddress.ip_address(flag))
        except ValueError:
            raise ValueError(f"--advertise-address: invalid IP address {flag!r}") from None
    if bind_address not in ("", "0.0.0.0", "::"):
        return bind_address
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect((_PROBE_ADDRESS, 9))
            return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def _put(store: Store, want: dict) -> None:
    """Creates the object or brings the fields it names to `want`, leaving the rest."""
    name = want["metadata"]["name"]
    try:
        current = store.get(NAMESPACE, name)
    except ApiError as e:
        if e.code != 404:
            raise
        try:
            store.create(NAMESPACE, want)
        except ApiError as e:
            if e.code != 409:
                raise
        return
    if all(current.get(k) == v for k, v in want.items() if k != "metadata") and \
            (current["metadata"].get("labels") or {}) == want["metadata"]["labels"]:
        return

    def update(obj: dict) -> dict:
        obj["metadata"]["labels"] = want["metadata"]["labels"]
        obj.update({k: v for k, v in want.items() if k != "metadata"})
        return obj
    store.guaranteed_update(NAMESPACE, name, update)


def _exists(store: Store) -> bool:
    try:
        store.get(NAMESPACE, NAME)
    except ApiError as e:
        if e.code != 404:
            raise
        return False
    return True


def reconcile(stores: dict[str, Store], cluster_ip: str, address: str, port: int) -> None:
    """The Service keeps the first address of the range once it has one; Endpoints and
    EndpointSlice follow this server's address and port."""
    services = stores["services"]
    try:
        svc = services.get(NAMESPACE, NAME)
        if [p.get("targetPort") for p in svc["spec"].get("ports") or []] != [port]:
            services.guaranteed_update(NAMESPACE, NAME, lambda obj: {**obj, "spec": {
                **obj["spec"], "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                                          "targetPort": port}]}})
    except ApiError as e:
        if e.code != 404:
            raise
        try:
            services.create(NAMESPACE, {
                "metadata": {"name": NAME, "labels": {"component": "apiserver",
                                                      "provider": "kubernetes"}},
                "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "sessionAffinity": "None",
                         "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                                    "targetPort": port}]}})
        except ApiError as e:
            # Another server made it first: 409, or 422 once that one holds the address.
            if e.code not in (409, 422) or not _exists(services):
                raise
    family = "IPv6" if ":" in address else "IPv4"
    _put(stores["endpoints"], {
        "metadata": {"name": NAME, "labels": {"endpointslice.kubernetes.io/skip-mirror":
                                              "true"}},
        "subsets": [{"addresses": [{"ip": address}],
                     "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]})
    _put(stores["endpointslices"], {
        "metadata": {"name": NAME, "labels": {SERVICE_NAME_LABEL: NAME}},
        "addressType": family,
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}]})
