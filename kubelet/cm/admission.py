"""Pod admission on this node (the kubelet's canAdmitPod): a pod the node cannot take is
refused before anything of it exists, and ends Failed with the reason. In the kubelet's order:
the sysctl allowlist (SysctlForbidden), then the resources the pod requests against the node's
allocatable less what the admitted pods request (OutOfpods, OutOfcpu, OutOfmemory), then
AppArmor: a pod that asks for a profile is refused, since no profile can be enforced here
(the host has no AppArmor, or the runtime, which applies none, runs on one that has)."""
from __future__ import annotations

from dataclasses import dataclass

from kubelet.cm import qos, sysctls
from kubelet.pods import Pod

APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"


@dataclass
class Verdict:
    admit: bool
    reason: str = ""
    message: str = ""


@dataclass
class Node:
    """What admission checks against: allocatable cpu (millicores) and memory (bytes), maxPods,
    the unsafe sysctls allowed, whether the host has AppArmor."""
    cpu: int
    memory: int
    max_pods: int
    allowed_unsafe_sysctls: list[str]
    apparmor_enabled: bool


def _insufficient(name: str, requested: int, used: int, capacity: int) -> Verdict:
    return Verdict(False, f"OutOf{name}", f"Node didn't have enough resource: {name}, "
                   f"requested: {requested}, used: {used}, capacity: {capacity}")


def admit(pod: Pod, active: list[Pod], node: Node) -> Verdict:
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
        used = sum(qos.pod_requests(admitted, name) for admitted in active)
        if requested > allocatable - used:
            return _insufficient(name, requested, used, allocatable)
    if _apparmor_required(pod):
        why = ("the pycontainer runtime does not apply AppArmor profiles"
               if node.apparmor_enabled else "AppArmor is not enabled on the host")
        return Verdict(False, "AppArmor", f"Cannot enforce AppArmor: {why}")
    return Verdict(True)


def _apparmor_required(pod: Pod) -> bool:
    """The kubelet's isRequired: an appArmorProfile other than Unconfined for the pod or any
    container, or the deprecated per-container annotation naming a profile."""
    contexts = [pod.security_context]
    contexts += [c.get("securityContext") or {}
                 for c in pod.init_containers + pod.containers]
    if any((sc.get("appArmorProfile") or {}).get("type", "Unconfined") != "Unconfined"
           for sc in contexts):
        return True
    return any(key.startswith(APPARMOR_ANNOTATION_PREFIX) and value != "unconfined"
               for key, value in pod.annotations.items())
