"""The Endpoints controller, as kube's: for every Service with a selector, the v1 Endpoints of
the same name listing the pods it selects that have an IP, ready ones under addresses and the
others under notReadyAddresses (publishNotReadyAddresses lists every one as ready), grouped
into subsets by the ports the Service's ports resolve to in each pod (RepackSubsets). The
Endpoints go when their Service does; a Service without a selector keeps what users wrote."""
from __future__ import annotations

import logging

from kubeapi.informer import NAMESPACE_INDEX, resource_path, split_key
from kubeapi.status import ApiError

from ..context import ControllerContext
from .service_pods import (ServiceSyncer, family_ip, find_port, hostname, in_endpoints, is_ready,
                           selects, service_labels, target_ref)

log = logging.getLogger("endpoints-controller")

MANAGED_BY_LABEL = "endpoints.kubernetes.io/managed-by"
MANAGED_BY = "endpoint-controller"
# Endpoints hold at most this many addresses; the rest is cut, and the object says so.
MAX_CAPACITY = 1000
OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"


def _address(pod: dict, ip: str, service: dict) -> dict:
    address: dict = {"ip": ip}
    if hostname(pod, service):
        address["hostname"] = hostname(pod, service)
    node_name = (pod.get("spec") or {}).get("nodeName")
    if node_name:
        address["nodeName"] = node_name
    address["targetRef"] = target_ref(pod)
    return address


def _port(name: str, number: int, protocol: str, app_protocol: str) -> dict:
    port: dict = {"name": name} if name else {}
    port.update(port=number, protocol=protocol)
    if app_protocol:
        port["appProtocol"] = app_protocol
    return port


def subsets_for(service: dict, pods: list[dict]) -> list[dict]:
    """The Endpoints subsets of a Service over the pods of its namespace."""
    spec = service["spec"]
    publish = bool(spec.get("publishNotReadyAddresses"))
    family = (spec.get("ipFamilies") or ["IPv4"])[0]
    headless_portless = not spec.get("ports") and spec.get("clusterIP") == "None"
    # (ready, address as a sorted tuple) -> the ports it serves
    served: dict[tuple, set[tuple]] = {}
    addresses: dict[tuple, dict] = {}
    for pod in pods:
        if not selects(service, pod) or not in_endpoints(pod, publish):
            continue
        ip = family_ip(pod, family)
        if not ip:
            continue
        address = _address(pod, ip, service)
        ready = publish or is_ready(pod)
        ident = (ready, ip, pod["metadata"]["name"])
        addresses[ident] = address
        ports = served.setdefault(ident, set())
        if headless_portless:
            continue
        for sp in spec.get("ports") or []:
            number = find_port(pod, sp)
            if number is not None:
                ports.add((sp.get("name") or "", number, sp.get("protocol", "TCP"),
                           sp.get("appProtocol") or ""))
        if not ports:
            del served[ident], addresses[ident]
    groups: dict[frozenset, list[tuple]] = {}
    for ident, ports in served.items():
        groups.setdefault(frozenset(ports), []).append(ident)
    subsets = []
    for ports, idents in sorted(groups.items(), key=lambda g: sorted(g[0])):
        subset: dict = {}
        ready = sorted((i for i in idents if i[0]), key=lambda i: (i[1], i[2]))
        not_ready = sorted((i for i in idents if not i[0]), key=lambda i: (i[1], i[2]))
        if ready:
            subset["addresses"] = [addresses[i] for i in ready]
        if not_ready:
            subset["notReadyAddresses"] = [addresses[i] for i in not_ready]
        if ports:
            subset["ports"] = [_port(*p) for p in sorted(ports)]
        subsets.append(subset)
    return subsets


def truncate(subsets: list[dict]) -> bool:
    """Cuts the subsets to MAX_CAPACITY addresses, ready ones kept first, as kube's endpoints
    controller; True when something was cut."""
    if sum(len(s.get("addresses") or []) + len(s.get("notReadyAddresses") or [])
           for s in subsets) <= MAX_CAPACITY:
        return False
    room = MAX_CAPACITY
    for key in ("addresses", "notReadyAddresses"):
        for subset in subsets:
            kept = (subset.get(key) or [])[:room]
            room -= len(kept)
            if kept:
                subset[key] = kept
            else:
                subset.pop(key, None)
    subsets[:] = [s for s in subsets if s.get("addresses") or s.get("notReadyAddresses")]
    return True


class EndpointsController:
    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.syncer = ServiceSyncer(ctx, "endpoints-controller", log)
        self.endpoints = ctx.informers.informer(resource_path("", "v1", "endpoints"))

    def start(self) -> None:
        self.syncer.start(self.sync, self.endpoints)

    def sync(self, key: str) -> None:
        namespace, name = split_key(key)
        path = f"/api/v1/namespaces/{namespace}/endpoints"
        service = self.syncer.services.store.get(key)
        current = self.endpoints.store.get(key)
        if service is None:
            if current is not None:
                try:
                    self.ctx.client.delete(f"{path}/{name}")
                except ApiError as e:
                    if e.code != 404:
                        raise
            return
        if not (service.get("spec") or {}).get("selector"):
            return
        pods = self.syncer.pods.store.by_index(NAMESPACE_INDEX, namespace)
        subsets = subsets_for(service, pods)
        labels = {**service_labels(service), MANAGED_BY_LABEL: MANAGED_BY}
        annotations = dict((current or {}).get("metadata", {}).get("annotations") or {})
        annotations.pop(OVER_CAPACITY, None)
        if truncate(subsets):
            annotations[OVER_CAPACITY] = "truncated"
        if current is not None and (current.get("subsets") or []) == subsets and \
                (current["metadata"].get("labels") or {}) == labels and \
                (current["metadata"].get("annotations") or {}) == annotations:
            return
        meta = {**(current or {}).get("metadata", {}), "name": name, "namespace": namespace,
                "labels": labels}
        meta.pop("annotations", None)
        if annotations:
            meta["annotations"] = annotations
        body: dict = {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta}
        if subsets:
            body["subsets"] = subsets
        if current is None:
            self.ctx.client.create(path, body)
        else:
            self.ctx.client.request("PUT", f"{path}/{name}", body)


def start(ctx: ControllerContext) -> None:
    EndpointsController(ctx).start()
