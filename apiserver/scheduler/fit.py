"""Where a pod may go, as kube-scheduler's default filters decide it, in their order and words:
NodeUnschedulable, TaintToleration, NodeAffinity, NodeResourcesFit; and the least-allocated
score among the nodes that fit. Requests are integers (quantities), computed once per pod, so
that a filter is a few comparisons."""
from __future__ import annotations

from kubeapi.node_affinity import node_affinity_matches

from .cache import NodeInfo, Taint

UNSCHEDULABLE_TAINT = Taint("node.kubernetes.io/unschedulable", "", "NoSchedule")


def tolerates(toleration: dict, taint: Taint) -> bool:
    """kube's Toleration.ToleratesTaint."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.effect:
        return False
    key = toleration.get("key") or ""
    if key and key != taint.key:
        return False
    if (toleration.get("operator") or "Equal") == "Exists":
        return True
    return bool(key) and (toleration.get("value") or "") == taint.value


def _untolerated(tolerations: list[dict], taint: Taint) -> bool:
    return not any(tolerates(t, taint) for t in tolerations)


def unfit_reasons(pod: dict, requests: dict[str, int], node: NodeInfo) -> list[str]:
    """Why pod cannot go to node (empty when it fits); the first filter that fails speaks,
    NodeResourcesFit naming every resource short."""
    spec = pod.get("spec") or {}
    tolerations = spec.get("tolerations") or []
    if node.unschedulable and _untolerated(tolerations, UNSCHEDULABLE_TAINT):
        return ["node(s) were unschedulable"]
    for taint in node.taints:
        if _untolerated(tolerations, taint):
            return [f"node(s) had untolerated taint {{{taint.key}: {taint.value}}}"]
    if (spec.get("nodeSelector") or spec.get("affinity")) and \
            not node_affinity_matches(spec, node.node):
        return ["node(s) didn't match Pod's node affinity/selector"]
    reasons = []
    if node.max_pods is not None and node.pod_count + 1 > node.max_pods:
        reasons.append("Too many pods")
    for name, want in requests.items():
        if node.requested.get(name, 0) + want > node.allocatable.get(name, 0):
            reasons.append(f"Insufficient {name}")
    return reasons


def load(node: NodeInfo) -> float:
    """Least-allocated scoring: the busiest of cpu and memory (and pods, a little) as a
    fraction; the lowest wins."""
    busiest = node.pod_count / 1000
    for name in ("cpu", "memory"):
        have = node.allocatable.get(name, 0)
        if have > 0:
            busiest = max(busiest, node.requested.get(name, 0) / have)
    return busiest


def nodes_to_find(total: int) -> int:
    """kube's adaptive percentageOfNodesToScore: every node up to 100, then a share that
    shrinks from 50 % as the cluster grows (5 % at least), never fewer than 100."""
    if total <= 100:
        return total
    percentage = max(5, 50 - total // 125)
    return max(100, total * percentage // 100)
