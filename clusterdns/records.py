"""The cluster's names from its Services, EndpointSlices and Namespaces, found as CoreDNS's
kubernetes plugin finds them (findServices, findPods, serviceRecordForIP):

- a ClusterIP Service answers its clusterIPs, once per port that matches the request;
- a headless Service (clusterIP None), or any Service asked for one endpoint's hostname, answers
  the ready addresses of its EndpointSlices, named by the endpoint's hostname or its dashed IP;
  a headless Service without ready endpoints does not exist (NXDOMAIN), as in CoreDNS;
- an ExternalName Service answers its externalName as a CNAME target;
- pods in "insecure" mode: a-b-c-d.namespace.pod is a-b-c-d as an IP in any existing namespace.

Objects are the API's JSON (plain dicts) from a `ClusterView`; answers are `Entry`s, the
`msg.Service` of CoreDNS, that `zone` turns into resource records."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Protocol

from clusterdns.request import POD, SVC, RecordRequest

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
NO_PORT = -1  # a slice without ports: addresses, but no SRV record


class NoItems(LookupError):
    """The name does not exist (NXDOMAIN)."""


class ClusterView(Protocol):
    """What the zone reads from the cluster; `source.InformerView` keeps it from the API."""

    def synced(self) -> bool: ...
    def serial(self) -> int: ...
    def generation(self) -> int: ...   # changes whenever anything in the view changed
    def namespace_exists(self, name: str) -> bool: ...
    def service(self, namespace: str, name: str) -> dict | None: ...
    def endpoint_slices(self, namespace: str, service: str) -> list[dict]: ...
    def services_by_ip(self, ip: str) -> list[dict]: ...
    def endpoint_slices_by_ip(self, ip: str) -> list[dict]: ...


@dataclass(frozen=True)
class Entry:
    host: str                 # an IP address, or a DNS name (ExternalName) for a CNAME
    port: int                 # 0 when the name has no port (pods, ExternalName)
    key: tuple[str, ...]      # the SRV target's labels below the zone, e.g. (web, default, svc)


@dataclass(frozen=True)
class Address:
    ip: str
    hostname: str             # the endpoint's hostname, else its dashed IP
    ports: tuple[tuple[str, str, int], ...]   # (name, protocol, port) of its slice


def normalize_ip(text: str) -> str:
    """The canonical text of an address ("" if it is none), so that IPv6 forms compare equal."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return ""


def find(req: RecordRequest, view: ClusterView) -> list[Entry]:
    """The entries a name holds; [] is a name that exists with no records (NODATA)."""
    if not req.kind:
        return []
    if not view.namespace_exists(req.namespace):
        raise NoItems(req.namespace)
    if not req.service:
        return []
    if req.kind == POD:
        return _find_pod(req)
    return _find_services(req, view)


def _find_pod(req: RecordRequest) -> list[Entry]:
    name = req.service
    text = name.replace("-", ".") if name.count("-") == 3 and "--" not in name \
        else name.replace("-", ":")
    ip = normalize_ip(text)
    if not ip:
        raise NoItems(name)
    return [Entry(ip, 0, (name, req.namespace, POD))]


def _find_services(req: RecordRequest, view: ClusterView) -> list[Entry]:
    svc = view.service(req.namespace, req.service)
    if svc is None:
        raise NoItems(req.service)
    spec = svc.get("spec") or {}
    key = (req.service, req.namespace, SVC)
    if spec.get("type") == "ExternalName":
        target = str(spec.get("externalName") or "")
        if req.endpoint or req.port or req.protocol or not target or normalize_ip(target):
            raise NoItems(req.service)
        return [Entry(target.rstrip(".").lower(), 0, key)]
    cluster_ips = _cluster_ips(spec)
    entries: list[Entry] = []
    if _headless(cluster_ips) or req.endpoint:
        for addr in endpoint_addresses(view.endpoint_slices(req.namespace, req.service)):
            if req.endpoint and req.endpoint != addr.hostname.lower():
                continue
            for name, protocol, port in addr.ports:
                if _matches(req, name, protocol):
                    entries.append(Entry(addr.ip, port, (addr.hostname,) + key))
        if not entries:
            raise NoItems(req.service)
        return entries
    matched = False  # a matching port without an allocated IP yet: the name exists, empty
    for port in spec.get("ports") or []:
        if _matches(req, str(port.get("name") or ""), str(port.get("protocol") or "TCP")):
            matched = True
            entries.extend(Entry(ip, int(port.get("port") or 0), key) for ip in cluster_ips)
    if not matched:
        raise NoItems(req.service)
    return entries


def reverse(ip: str, view: ClusterView) -> list[tuple[str, ...]]:
    """The names (labels below the zone) whose address `ip` is: a Service's clusterIP first,
    else every endpoint that has it; [] when the cluster does not know it."""
    for svc in view.services_by_ip(ip):
        meta = svc.get("metadata") or {}
        return [(meta.get("name", ""), meta.get("namespace", ""), SVC)]
    names = []
    for slc in view.endpoint_slices_by_ip(ip):
        meta = slc.get("metadata") or {}
        service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL, "")
        for addr in endpoint_addresses([slc]):
            if addr.ip == ip:
                names.append((addr.hostname, service, meta.get("namespace", ""), SVC))
    return names


def endpoint_addresses(slices: list[dict]) -> list[Address]:
    """The ready addresses of IP EndpointSlices (ready unset counts as ready, as in the API)."""
    out = []
    for slc in slices:
        if slc.get("addressType", "IPv4") not in ("IPv4", "IPv6"):
            continue
        ports = tuple((str(p.get("name") or ""), str(p.get("protocol") or "TCP"),
                       NO_PORT if p.get("port") is None else int(p["port"]))
                      for p in slc.get("ports") or []) or (("", "", NO_PORT),)
        for ep in slc.get("endpoints") or []:
            if (ep.get("conditions") or {}).get("ready") is False:
                continue
            for text in ep.get("addresses") or []:
                ip = normalize_ip(text)
                if ip:
                    out.append(Address(ip, ep.get("hostname") or _dashed(ip), ports))
    return out


def _dashed(ip: str) -> str:
    if "." in ip:
        return ip.replace(".", "-")
    name = ip.replace(":", "-")
    return name + "0" if name.endswith("-") else name


def cluster_ips(svc: dict) -> list[str]:
    return _cluster_ips(svc.get("spec") or {})


def _cluster_ips(spec: dict) -> list[str]:
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [ip if ip == "None" else normalize_ip(ip) for ip in ips]


def _headless(ips: list[str]) -> bool:
    return bool(ips) and ips[0] == "None"


def _matches(req: RecordRequest, name: str, protocol: str) -> bool:
    return (not req.port or req.port == name.lower()) and \
        (not req.protocol or req.protocol == protocol.lower())
