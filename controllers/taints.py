"""Node taints and pod tolerations: the NoExecute taints the node lifecycle controller manages,
and kube's ToleratesTaint matching rules."""
from __future__ import annotations

from kubeapi import timefmt

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
MANAGED = (NOT_READY, UNREACHABLE)
EFFECTS = ("NoSchedule", "NoExecute")


def wanted_keys(ready_status: str | None) -> set[str]:
    """The condition taints a node with this Ready status carries."""
    if ready_status == "False":
        return {NOT_READY}
    if ready_status == "Unknown":
        return {UNREACHABLE}
    return set()


def reconcile(taints: list[dict], ready_status: str | None) -> list[dict] | None:
    """The node's new spec.taints, or None when they are already right: the not-ready or
    unreachable taint (NoSchedule and NoExecute) for its Ready status, the other removed."""
    want = wanted_keys(ready_status)
    kept = [t for t in taints if t.get("key") not in MANAGED or
            (t.get("key") in want and t.get("effect") in EFFECTS)]
    have = {(t.get("key"), t.get("effect")) for t in kept}
    now = timefmt.rfc3339()
    added = [{"key": key, "effect": effect, "timeAdded": now}
             for key in sorted(want) for effect in EFFECTS if (key, effect) not in have]
    result = kept + added
    return None if result == taints else result


def tolerates(toleration: dict, taint: dict) -> bool:
    """kube's Toleration.ToleratesTaint."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    operator = toleration.get("operator") or "Equal"
    if key and key != taint.get("key"):
        return False
    if operator == "Exists":
        return True
    if not key:
        return False  # an empty key goes with Exists only
    return (toleration.get("value") or "") == (taint.get("value") or "")


def toleration_seconds(tolerations: list[dict], taints: list[dict]) -> float | None:
    """How long a pod may stay despite these NoExecute taints: 0 when one is not tolerated,
    None when all are tolerated forever, else the shortest tolerationSeconds that applies."""
    shortest: float | None = None
    for taint in taints:
        matching = [t for t in tolerations if tolerates(t, taint)]
        if not matching:
            return 0.0
        for t in matching:
            seconds = t.get("tolerationSeconds")
            if seconds is None:
                continue
            seconds = max(0.0, float(seconds))
            shortest = seconds if shortest is None else min(shortest, seconds)
    return shortest
