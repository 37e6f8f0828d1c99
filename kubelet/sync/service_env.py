"""The Services a container learns of through its environment, as the kubelet injects them
(getServiceEnvVarMap and envvars.FromServices): the `kubernetes` Service of `default` for every
pod, and with enableServiceLinks (the default) every Service of the pod's own namespace. Each
Service with a ClusterIP gives {NAME}_SERVICE_HOST, {NAME}_SERVICE_PORT (its first port),
{NAME}_SERVICE_PORT_{PORT_NAME} per named port, and Docker's link variables {NAME}_PORT and
{NAME}_PORT_{port}_{PROTO}[_PROTO|_PORT|_ADDR]; NAME is the Service's name upper-cased with
dashes as underscores."""
from __future__ import annotations

import ipaddress

# Injected into every pod whatever its enableServiceLinks: in-cluster clients find the API
# server by KUBERNETES_SERVICE_HOST/PORT.
MASTER_NAMESPACE = "default"
MASTER_SERVICES = ("kubernetes",)


def has_cluster_ip(service: dict) -> bool:
    ip = (service.get("spec") or {}).get("clusterIP") or ""
    return ip not in ("", "None")


def for_pod(services: list[dict], namespace: str, enable_service_links: bool
            ) -> dict[str, str]:
    """The variables the Services give a pod of `namespace`."""
    chosen: dict[str, dict] = {}
    for service in services:
        if not has_cluster_ip(service):
            continue
        meta = service.get("metadata") or {}
        name = meta.get("name", "")
        if meta.get("namespace") == MASTER_NAMESPACE and name in MASTER_SERVICES:
            chosen.setdefault(name, service)
        elif meta.get("namespace") == namespace and enable_service_links:
            chosen[name] = service
    env: dict[str, str] = {}
    for service in chosen.values():
        env.update(variables(service))
    return env


def variables(service: dict) -> list[tuple[str, str]]:
    spec = service.get("spec") or {}
    ports = spec.get("ports") or []
    if not ports:
        return []
    prefix = env_name(service["metadata"]["name"])
    ip = spec["clusterIP"]
    out = [(f"{prefix}_SERVICE_HOST", ip), (f"{prefix}_SERVICE_PORT", str(ports[0]["port"]))]
    out += [(f"{prefix}_SERVICE_PORT_{env_name(p['name'])}", str(p["port"]))
            for p in ports if p.get("name")]
    host = f"[{ip}]" if ipaddress.ip_address(ip).version == 6 else ip
    for i, p in enumerate(ports):
        proto = (p.get("protocol") or "TCP").lower()
        url = f"{proto}://{host}:{p['port']}"
        if i == 0:
            out.append((f"{prefix}_PORT", url))
        port_prefix = f"{prefix}_PORT_{p['port']}_{proto.upper()}"
        out += [(port_prefix, url), (f"{port_prefix}_PROTO", proto),
                (f"{port_prefix}_PORT", str(p["port"])), (f"{port_prefix}_ADDR", ip)]
    return out


def env_name(name: str) -> str:
    return name.replace("-", "_").upper()
