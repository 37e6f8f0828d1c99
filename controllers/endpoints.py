"""The Endpoints controller, as kube's: for every Service with a selector, the v1 Endpoints of
the same name listing the pods it selects that have an IP, ready ones under addresses and the
others under notReadyAddresses (publishNotReadyAddresses lists every one as ready), grouped
into subsets by the ports the Service's ports resolve to in each pod (RepackSubsets). The
Endpoints go when their Service does; a Service without a selector keeps what users wrote."""
from __future__ import annotations

import logging

from kubeapi.informer import NAMESPACE_INDEX, resource_path, split_key
from kubeapi.status import ApiError

from .context import ControllerContext
from .service_pods import (ServiceSyncer, family_ip, find_port, hostname, in_endpoints, is_ready,
                           selects, service_labels, target_ref)

log = logging.getLogger("endpoints-controller")

MANAGED_BY_LABEL = "endpoints.kubernetes.io/managed-by"
MANAGED_BY = "endpoint-controller"


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
        if current is not None and (current.get("subsets") or []) == subsets and \
                (current["metadata"].get("labels") or {}) == labels:
            return
        body: dict = {"apiVersion": "v1", "kind": "Endpoints",
                      "metadata": {"name": name, "namespace": namespace, "labels": labels}}
        if subsets:
            body["subsets"] = subsets
        if current is None:
            self.ctx.client.create(path, body)
        else:
            body["metadata"] = {**current["metadata"], "labels": labels}
            self.ctx.client.request("PUT", f"{path}/{name}", body)


def start(ctx: ControllerContext) -> None:
    EndpointsController(ctx).start()
