"""Pod helpers of the workload controllers, as kube's podutil and controller_utils: active pods,
readiness and availability (minReadySeconds), and the order in which a ReplicaSet deletes pods
when it scales down (ActivePodsWithRanks)."""
from __future__ import annotations

import functools
import math
import time

from kubeapi import timefmt

DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}


def pods_path(ns: str, name: str = "") -> str:
    base = f"/api/v1/namespaces/{ns}/pods"
    return f"{base}/{name}" if name else base


def is_active(pod: dict) -> bool:
    """controller.IsPodActive: not finished and not being deleted."""
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed") and \
        not pod["metadata"].get("deletionTimestamp")


def _ready_condition(pod: dict) -> dict | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond
    return None


def is_ready(pod: dict) -> bool:
    cond = _ready_condition(pod)
    return bool(cond) and cond.get("status") == "True"


def ready_since(pod: dict) -> float | None:
    """When the Ready condition last turned True (seconds), None when unknown or not ready."""
    cond = _ready_condition(pod)
    if not cond or cond.get("status") != "True" or not cond.get("lastTransitionTime"):
        return None
    return timefmt.parse(cond["lastTransitionTime"])


def is_available(pod: dict, min_ready_seconds: int, now: float | None = None) -> bool:
    """podutil.IsPodAvailable: ready, for at least minReadySeconds."""
    if not is_ready(pod):
        return False
    if not min_ready_seconds:
        return True
    since = ready_since(pod)
    now = time.time() if now is None else now
    return since is not None and since + min_ready_seconds <= now


def controller_ref(obj: dict) -> dict | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def _created(pod: dict) -> float | None:
    stamp = pod["metadata"].get("creationTimestamp")
    return timefmt.parse(stamp) if stamp else None


def _deletion_cost(pod: dict) -> int:
    try:
        return int((pod["metadata"].get("annotations") or {}).get(DELETION_COST, "0"))
    except ValueError:
        return 0


def _max_restarts(pod: dict) -> int:
    status = pod.get("status") or {}
    counts = [c.get("restartCount", 0) for c in (status.get("containerStatuses") or []) +
              (status.get("initContainerStatuses") or [])]
    return max(counts, default=0)


def _log_rank(t: float, now: float) -> int:
    """The power of two of a duration in nanoseconds, as kube's logarithmic scale-down buckets
    ages so that pods of about the same age count as the same age."""
    d = (now - t) * 1e9
    return -1 if d <= 0 else int(math.log2(d))


def _compare_times(t1: float | None, t2: float | None, now: float, uid1: str,
                   uid2: str) -> int | None:
    """-1 when the first goes first (the newer, or the one without a time)."""
    if t1 == t2:
        return None
    if t1 is None or t2 is None:
        return -1 if t1 is None else 1
    diff = _log_rank(t1, now) - _log_rank(t2, now)
    if diff == 0:
        return -1 if uid1 < uid2 else (1 if uid1 > uid2 else 0)
    return -1 if diff < 0 else 1


def deletion_order(pods: list[dict], ranks: dict[str, int], now: float | None = None) -> list[dict]:
    """Pods sorted so that the first are the ones to delete first, as ActivePodsWithRanks:
    unassigned < assigned; Pending < Unknown < Running; not ready < ready; lower deletion cost;
    more pods of the owner on the same node (rank) first; ready for less time; more restarts;
    newer. `ranks` maps a pod's uid to its rank."""
    now = time.time() if now is None else now

    def compare(a: dict, b: dict) -> int:
        na, nb = (a.get("spec") or {}).get("nodeName") or "", \
            (b.get("spec") or {}).get("nodeName") or ""
        if na != nb and (not na or not nb):
            return -1 if not na else 1
        pa = _PHASE_ORDINAL.get((a.get("status") or {}).get("phase"), 0)
        pb = _PHASE_ORDINAL.get((b.get("status") or {}).get("phase"), 0)
        if pa != pb:
            return -1 if pa < pb else 1
        ra, rb = is_ready(a), is_ready(b)
        if ra != rb:
            return -1 if not ra else 1
        ca, cb = _deletion_cost(a), _deletion_cost(b)
        if ca != cb:
            return -1 if ca < cb else 1
        ua, ub = a["metadata"].get("uid", ""), b["metadata"].get("uid", "")
        ka, kb = ranks.get(ua, 0), ranks.get(ub, 0)
        if ka != kb:
            return -1 if ka > kb else 1
        if ra and rb:
            order = _compare_times(ready_since(a), ready_since(b), now, ua, ub)
            if order:
                return order
        xa, xb = _max_restarts(a), _max_restarts(b)
        if xa != xb:
            return -1 if xa > xb else 1
        return _compare_times(_created(a), _created(b), now, ua, ub) or 0

    return sorted(pods, key=functools.cmp_to_key(compare))


def node_ranks(pods: list[dict], related: list[dict]) -> dict[str, int]:
    """getPodsRankedByRelatedPodsOnSameNode: a pod's rank is how many active related pods
    share its node (0 for an unassigned pod)."""
    per_node: dict[str, int] = {}
    for pod in related:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and is_active(pod):
            per_node[node] = per_node.get(node, 0) + 1
    return {p["metadata"].get("uid", ""): per_node.get((p.get("spec") or {}).get("nodeName")
                                                       or "", 0) for p in pods}
