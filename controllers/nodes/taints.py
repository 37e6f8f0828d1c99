"""Node taints and pod tolerations: the taints the node lifecycle controller keeps in line with
a node's conditions and spec.unschedulable, and kube's ToleratesTaint matching rules."""
from __future__ import annotations

from kubeapi import timefmt

from . import zones

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
# NoSchedule taints for conditions, as kube's TaintNodesByCondition: (type, status) -> key.
CONDITION_TAINTS = {
    ("Ready", "False"): NOT_READY, ("Ready", "Unknown"): UNREACHABLE,
    ("MemoryPressure", "True"): "node.kubernetes.io/memory-pressure",
    ("DiskPressure", "True"): "node.kubernetes.io/disk-pressure",
    ("PIDPressure", "True"): "node.kubernetes.io/pid-pressure",
    ("NetworkUnavailable", "True"): "node.kubernetes.io/network-unavailable",
}
MANAGED = frozenset(CONDITION_TAINTS.values()) | {UNSCHEDULABLE}


def wanted(conditions: dict[str, str], unschedulable: bool) -> set[tuple[str, str]]:
    """(key, effect) of the taints a node with these condition statuses carries: NoSchedule
    for each condition taint and spec.unschedulable, NoExecute for not-ready/unreachable."""
    out = {(key, "NoSchedule") for (kind, status), key in CONDITION_TAINTS.items()
           if conditions.get(kind) == status}
    if unschedulable:
        out.add((UNSCHEDULABLE, "NoSchedule"))
    ready = conditions.get("Ready")
    if ready in ("False", "Unknown"):
        out.add((NOT_READY if ready == "False" else UNREACHABLE, "NoExecute"))
    return out


def reconcile(taints: list[dict], conditions: dict[str, str], unschedulable: bool,
              no_execute: str = zones.TAINT) -> list[dict] | None:
    """The node's new spec.taints, or None when they are already right: the taints this
    controller manages as `wanted` says (new ones with timeAdded now), every other kept.
    no_execute (zones): TAINT as wanted, HOLD adds no NoExecute taint (those that
    are right stay), CLEAR keeps none."""
    want = wanted(conditions, unschedulable)
    have_now = {(t.get("key"), t.get("effect")) for t in taints}
    if no_execute != zones.TAINT:
        want = {(k, e) for k, e in want if e != "NoExecute" or
                (no_execute == zones.HOLD and (k, e) in have_now)}
    kept = [t for t in taints if t.get("key") not in MANAGED or
            (t.get("key"), t.get("effect")) in want]
    have = {(t.get("key"), t.get("effect")) for t in kept}
    now = timefmt.rfc3339()
    added = [{"key": key, "effect": effect, "timeAdded": now}
             for key, effect in sorted(want - have, key=lambda t: (t[0], t[1] != "NoSchedule"))]
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
