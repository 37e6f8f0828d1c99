"""The proxy's view of the API: each port of a Service with the endpoints that serve it, built
from v1 Service and discovery.k8s.io/v1 EndpointSlice objects (plain dicts, as the informer
hands them). IPv4 only, as the `ip` table the rules live in.

Which endpoints a port uses follows kube-proxy's CategorizeEndpoints: ready endpoints, or, when
none is ready, those still serving while terminating (ProxyTerminatingEndpoints); a Local
traffic policy keeps only the endpoints of this node."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
DEFAULT_AFFINITY_TIMEOUT = 10800  # seconds, v1.DefaultClientIPServiceAffinitySeconds
PROTOCOLS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    node_name: str = ""


@dataclass(frozen=True)
class ServicePort:
    """One port of one Service: what the rules of its chains are made from."""
    namespace: str
    name: str
    port_name: str
    protocol: str                       # tcp, udp or sctp (nft's spelling)
    port: int
    cluster_ip: str = ""                # "" for headless/ExternalName: no rules
    node_port: int = 0
    external_ips: tuple[str, ...] = ()  # spec.externalIPs and status.loadBalancer.ingress
    affinity_timeout: int = 0           # seconds of ClientIP affinity, 0 for None
    internal_local: bool = False
    external_local: bool = False
    endpoints: tuple[Endpoint, ...] = ()

    @property
    def key(self) -> str:
        """ns/name:port, as kube-proxy's ServicePortName prints."""
        return f"{self.namespace}/{self.name}:{self.port_name}"

    @property
    def chain_base(self) -> str:
        return f"{self.namespace}/{self.name}/{self.protocol}/{self.port_name}"

    @property
    def externally_accessible(self) -> bool:
        return bool(self.node_port or self.external_ips)


@dataclass(frozen=True)
class EndpointChoice:
    """The endpoints each kind of traffic goes to (see the module docstring)."""
    cluster: tuple[Endpoint, ...]
    local: tuple[Endpoint, ...]
    any_usable: bool            # some endpoint could take traffic, whatever the policy


def _usable(endpoints: list[Endpoint]) -> tuple[Endpoint, ...]:
    ready = [e for e in endpoints if e.ready]
    if ready:
        return tuple(ready)
    return tuple(e for e in endpoints if e.serving and e.terminating)


def choose_endpoints(sp: ServicePort, node_name: str) -> EndpointChoice:
    every = list(sp.endpoints)
    cluster = _usable(every)
    local = _usable([e for e in every if e.node_name and e.node_name == node_name])
    return EndpointChoice(cluster, local, bool(cluster) or bool(local))


@dataclass
class ServiceModel:
    """Services and EndpointSlices by key, and the ServicePorts they make."""
    services: dict[str, dict] = field(default_factory=dict)       # "ns/name" -> Service
    # "ns/svc" -> slice key -> slice
    slices: dict[str, dict[str, dict]] = field(default_factory=dict)

    def set_service(self, svc: dict) -> str:
        key = _meta_key(svc)
        self.services[key] = svc
        return key

    def delete_service(self, svc: dict) -> str:
        key = _meta_key(svc)
        self.services.pop(key, None)
        return key

    def set_slice(self, eps: dict) -> str:
        """Stores a slice under the Service it belongs to; returns that Service's key ("" when
        the slice names none)."""
        svc_key = _slice_service_key(eps)
        if svc_key:
            self.slices.setdefault(svc_key, {})[_meta_key(eps)] = eps
        return svc_key

    def delete_slice(self, eps: dict) -> str:
        svc_key = _slice_service_key(eps)
        slices = self.slices.get(svc_key)
        if slices is not None:
            slices.pop(_meta_key(eps), None)
            if not slices:
                del self.slices[svc_key]
        return svc_key

    def service_ports(self, key: str) -> list[ServicePort]:
        svc = self.services.get(key)
        if svc is None:
            return []
        return service_ports(svc, list(self.slices.get(key, {}).values()))

    def keys(self) -> list[str]:
        return sorted(self.services)


def _meta_key(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


def _slice_service_key(eps: dict) -> str:
    meta = eps.get("metadata") or {}
    svc = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return f"{meta.get('namespace') or ''}/{svc}" if svc else ""


def _ipv4(text: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text))
    except (ipaddress.AddressValueError, ValueError):
        return ""


def service_ports(svc: dict, slices: list[dict]) -> list[ServicePort]:
    """The ServicePorts of a Service that the proxy programs: none for a headless or
    ExternalName Service, or one whose cluster IP is not IPv4."""
    meta = svc.get("metadata") or {}
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return []
    cluster_ip = _ipv4(spec.get("clusterIP") or "")
    if not cluster_ip:
        return []
    external = [ip for ip in (_ipv4(a) for a in spec.get("externalIPs") or []) if ip]
    if spec.get("type") == "LoadBalancer":
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        external += [ip for ip in (_ipv4(i.get("ip") or "") for i in ingress) if ip]
    affinity = 0
    if spec.get("sessionAffinity") == "ClientIP":
        config = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
        affinity = int(config.get("timeoutSeconds") or DEFAULT_AFFINITY_TIMEOUT)
    ports = []
    for p in spec.get("ports") or []:
        protocol = PROTOCOLS.get(p.get("protocol") or "TCP")
        if protocol is None:
            continue
        port_name = p.get("name") or ""
        ports.append(ServicePort(
            namespace=meta.get("namespace") or "", name=meta.get("name") or "",
            port_name=port_name, protocol=protocol, port=int(p["port"]), cluster_ip=cluster_ip,
            node_port=int(p.get("nodePort") or 0) if spec.get("type") in ("NodePort",
                                                                         "LoadBalancer") else 0,
            external_ips=tuple(dict.fromkeys(external)), affinity_timeout=affinity,
            internal_local=spec.get("internalTrafficPolicy") == "Local",
            external_local=spec.get("externalTrafficPolicy") == "Local",
            endpoints=_endpoints(slices, port_name, protocol)))
    return ports


def _endpoints(slices: list[dict], port_name: str, protocol: str) -> tuple[Endpoint, ...]:
    """The endpoints of the slices' port named `port_name`, one per ip:port (an endpoint may
    appear in two slices while the controller moves it)."""
    found: dict[tuple[str, int], Endpoint] = {}
    for eps in slices:
        if eps.get("addressType", "IPv4") != "IPv4":
            continue
        number = 0
        for p in eps.get("ports") or []:
            if (p.get("name") or "") == port_name and \
                    PROTOCOLS.get(p.get("protocol") or "TCP") == protocol and p.get("port"):
                number = int(p["port"])
        if not number:
            continue
        for e in eps.get("endpoints") or []:
            cond = e.get("conditions") or {}
            # Unset conditions, as the API documents them: ready unless said otherwise,
            # serving as ready, not terminating.
            ready = cond.get("ready") is not False
            serving = cond.get("serving") if cond.get("serving") is not None else ready
            for address in (e.get("addresses") or [])[:1]:  # kube-proxy uses the first
                ip = _ipv4(address)
                if ip and (ip, number) not in found:
                    found[(ip, number)] = Endpoint(ip, number, ready, bool(serving),
                                                   bool(cond.get("terminating")),
                                                   e.get("nodeName") or "")
    return tuple(sorted(found.values(), key=lambda e: (ipaddress.IPv4Address(e.ip), e.port)))
