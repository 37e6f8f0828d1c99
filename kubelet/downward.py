"""The downward API: a pod's own fields (fieldRef) and a container's resources
(resourceFieldRef) as strings, for env values and downwardAPI volume files, as the kubelet
formats them."""
from __future__ import annotations

import json
import math
import re

from kubeapi.quantity import parse_quantity
from kubelet.pods import Pod

_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.*)'\]$")


class FieldError(ValueError):
    """The reference names a field or resource the downward API does not offer."""


class PodInfo:
    """What the downward API needs besides the pod: the node's and the pod's addresses and the
    node's allocatable cpu cores and memory bytes (the limits of containers without one)."""
    __slots__ = ("host_ips", "pod_ips", "node_cpus", "node_memory")

    def __init__(self, host_ips: list[str], pod_ips: list[str], node_cpus: int,
                 node_memory: int) -> None:
        self.host_ips = host_ips
        self.pod_ips = pod_ips
        self.node_cpus = node_cpus
        self.node_memory = node_memory


def format_map(m: dict[str, str]) -> str:
    """k="v" lines sorted by key, as labels and annotations files are written (Go's %q)."""
    return "\n".join(f"{k}={json.dumps(m[k], ensure_ascii=False)}" for k in sorted(m))


def field_value(pod: Pod, path: str, info: PodInfo | None = None) -> str:
    if path == "metadata.name":
        return pod.name
    if path == "metadata.namespace":
        return pod.namespace
    if path == "metadata.uid":
        return pod.uid
    if path == "metadata.labels":
        return format_map(pod.labels)
    if path == "metadata.annotations":
        return format_map(pod.annotations)
    m = _SUBSCRIPT.match(path)
    if m:
        return (pod.labels if m.group(1) == "labels" else pod.annotations).get(m.group(2), "")
    if info is not None:
        if path == "spec.nodeName":
            return pod.node_name
        if path == "spec.serviceAccountName":
            return pod.service_account_name
        if path == "status.hostIP":
            return info.host_ips[0] if info.host_ips else ""
        if path == "status.hostIPs":
            return ",".join(info.host_ips)
        if path == "status.podIP":
            return info.pod_ips[0] if info.pod_ips else ""
        if path == "status.podIPs":
            return ",".join(info.pod_ips)
    raise FieldError(f"unsupported fieldPath: {path}")


def resource_value(pod: Pod, container_name: str, resource: str, divisor: object,
                   info: PodInfo) -> str:
    """limits/requests of cpu, memory or ephemeral-storage divided by divisor, rounded up; a
    missing limit is the node's allocatable."""
    container = next((c for c in pod.containers + pod.init_containers
                      if c.get("name") == container_name), None)
    if container is None:
        raise FieldError(f"container {container_name} not found")
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or name not in ("cpu", "memory",
                                                          "ephemeral-storage"):
        raise FieldError(f"unsupported container resource : {resource}")
    values = (container.get("resources") or {}).get(kind) or {}
    if name in values:
        amount = parse_quantity(values[name])
    elif kind == "limits":
        amount = {"cpu": info.node_cpus, "memory": info.node_memory}.get(name, 0)
    else:
        amount = 0
    div = parse_quantity(divisor if divisor not in (None, "", 0) else "1")
    if div <= 0:
        raise FieldError(f"invalid divisor {divisor}")
    if name == "cpu":
        # the kubelet divides milli-values, so a divisor of 1m counts millicores
        return str(math.ceil(math.ceil(amount * 1000) / math.ceil(div * 1000)))
    return str(math.ceil(amount / div))
