"""Pod admission on this node (the kubelet's canAdmitPod): a pod the node cannot take is
refused before anything of it exists, and ends Failed with the reason. In the kubelet's order:
the sysctl allowlist (SysctlForbidden), then the resources the pod requests against the node's
allocatable less what the admitted pods request (OutOfpods, OutOfcpu, OutOfmemory)."""
from __future__ import annotations

from dataclasses import dataclass

from kubelet import qos, sysctls


@dataclass
class Verdict:
    admit: bool
    reason: str = ""
    message: str = ""


@dataclass
class Node:
    """What admission checks against: allocatable cpu (millicores) and memory (bytes), maxPods,
    the unsafe sysctls allowed."""
    cpu: int
    memory: int
    max_pods: int
    allowed_unsafe_sysctls: list[str]


def _insufficient(name: str, requested: int, used: int, capacity: int) -> Verdict:
    return Verdict(False, f"OutOf{name}", f"Node didn't have enough resource: {name}, "
                   f"requested: {requested}, used: {used}, capacity: {capacity}")


def admit(pod: dict, active: list[dict], node: Node) -> Verdict:
    """active: the pods admitted and not terminated yet."""
    message = sysctls.forbidden(pod, node.allowed_unsafe_sysctls)
    if message:
        return Verdict(False, sysctls.FORBIDDEN_REASON, message)
    if len(active) + 1 > node.max_pods:
        return _insufficient("pods", 1, len(active), node.max_pods)
    for name, allocatable in (("cpu", node.cpu), ("memory", node.memory)):
        requested = qos.pod_requests(pod, name)
        if requested == 0:
            continue
        used = sum(qos.pod_requests(p, name) for p in active)
        if requested > allocatable - used:
            return _insufficient(name, requested, used, allocatable)
    return Verdict(True)
