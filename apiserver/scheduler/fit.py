"""Where a pod may go: its resource requests, the filters of kube-scheduler (node Ready and
schedulable, nodeSelector, taints against tolerations, pods and resources against allocatable)
with their reasons in its words, and the least-allocated score among the nodes that fit."""
from __future__ import annotations

from fractions import Fraction

from kubeapi.node_affinity import node_affinity_matches
from kubeapi.quantity import parse_quantity


def pod_requests(pod: dict) -> dict[str, Fraction]:
    """The larger of the sum over containers and the largest init container, per resource."""
    spec = pod.get("spec") or {}
    total: dict[str, Fraction] = {}
    for c in spec.get("containers") or []:
        for name, value in (((c.get("resources") or {}).get("requests")) or {}).items():
            total[name] = total.get(name, Fraction(0)) + parse_quantity(value)
    for c in spec.get("initContainers") or []:
        for name, value in (((c.get("resources") or {}).get("requests")) or {}).items():
            total[name] = max(total.get(name, Fraction(0)), parse_quantity(value))
    return total


def _tolerates(tolerations: list[dict], taint: dict) -> bool:
    for t in tolerations:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        if t.get("operator", "Equal") == "Exists":
            if not t.get("key") or t["key"] == taint.get("key"):
                return True
        elif t.get("key") == taint.get("key") and t.get("value", "") == taint.get("value", ""):
            return True
    return False


def node_ready(node: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or [])


def unfit_reasons(pod: dict, node: dict, used: dict[str, Fraction], count: int) -> list[str]:
    """Why pod cannot go to node (empty when it fits), in kube-scheduler's words."""
    spec = pod.get("spec") or {}
    if not node_ready(node):
        return ["node(s) were not ready"]
    if (node.get("spec") or {}).get("unschedulable"):
        return ["node(s) were unschedulable"]
    if not node_affinity_matches(spec, node):
        return ["node(s) didn't match Pod's node affinity/selector"]
    tolerations = spec.get("tolerations") or []
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and \
                not _tolerates(tolerations, taint):
            return [f"node(s) had untolerated taint {{{taint.get('key')}: "
                    f"{taint.get('value', '')}}}"]
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    reasons = []
    if "pods" in allocatable and count + 1 > parse_quantity(allocatable["pods"]):
        reasons.append("Too many pods")
    for name, want in pod_requests(pod).items():
        if want == 0:
            continue
        have = parse_quantity(allocatable[name]) if name in allocatable else Fraction(0)
        if used.get(name, Fraction(0)) + want > have:
            reasons.append(f"Insufficient {name}")
    return reasons


def load(node: dict, used: dict[str, Fraction], count: int) -> Fraction:
    """Least-allocated scoring: the busiest of cpu and memory, as a fraction."""
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    busiest = Fraction(count, 1000)
    for name in ("cpu", "memory"):
        if name in allocatable and parse_quantity(allocatable[name]) > 0:
            busiest = max(busiest,
                          used.get(name, Fraction(0)) / parse_quantity(allocatable[name]))
    return busiest
