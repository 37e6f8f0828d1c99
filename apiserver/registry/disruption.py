"""policy/v1 PodDisruptionBudgets and their status: what kube's disruption controller computes
(healthy pods against the budget, the disruptions still allowed)."""
from __future__ import annotations

import math
import time

from kubeapi import label_selector, timefmt, workload_validation as checks
from kubeapi.status import ApiError

from .store import Store
from .workloads.workload import WorkloadStrategy

# An evicted pod counts as disrupted, not healthy, until it is gone or this much time passed.
DISRUPTED_POD_TIMEOUT = 120.0


class PodDisruptionBudgetStrategy(WorkloadStrategy):
    kind = "PodDisruptionBudget"
    initial_status = {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0,
                      "expectedPods": 0}

    def validate(self, obj: dict) -> list[dict]:
        return checks.validate_pdb(obj)


def ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _scaled(value: object, total: int) -> int:
    """GetScaledValueFromIntOrPercent, rounding up as the disruption controller asks."""
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value or 0)


def _controller_scale(stores: dict[str, Store], ns: str, ref: dict) -> int | None:
    """The replicas of the pod's controller (a Deployment through its ReplicaSet), None when
    it is not a workload of ours or does not exist."""
    plural = {"ReplicaSet": "replicasets", "StatefulSet": "statefulsets",
              "Deployment": "deployments"}.get(ref.get("kind", ""))
    if plural is None:
        return None
    try:
        owner = stores[plural].get(ns, ref["name"])
    except ApiError:
        return None
    if owner["metadata"].get("uid") != ref.get("uid"):
        return None
    if plural == "replicasets":
        parent = next((r for r in owner["metadata"].get("ownerReferences") or []
                       if r.get("controller") and r.get("kind") == "Deployment"), None)
        if parent is not None:
            scale = _controller_scale(stores, ns, parent)
            if scale is not None:
                return scale
    return int((owner.get("spec") or {}).get("replicas", 0))


def _expected_count(stores: dict[str, Store], ns: str, pods: list[dict]) -> int:
    """The sum of the scales of the pods' controllers (kube's getExpectedScale); pods
    without a controller do not count. A ValueError names a pod whose controller is gone."""
    scales: dict[str, int] = {}
    for pod in pods:
        ref = next((r for r in pod["metadata"].get("ownerReferences") or []
                    if r.get("controller")), None)
        if ref is None or ref.get("uid") in scales:
            continue
        scale = _controller_scale(stores, ns, ref)
        if scale is None:
            raise ValueError(f'found no controllers for pod "{pod["metadata"]["name"]}"')
        scales[ref.get("uid")] = scale
    return sum(scales.values())


def condition(allowed: int, generation: int, old: dict, now: float, reason: str = "",
               message: str = "") -> dict:
    """DisruptionAllowed, its transition time kept while its status stays."""
    condition = {"type": "DisruptionAllowed", "status": "True" if allowed else "False",
                 "reason": reason or ("SufficientPods" if allowed else "InsufficientPods"),
                 "message": message, "observedGeneration": generation}
    previous = next((c for c in old.get("conditions") or []
                     if c.get("type") == "DisruptionAllowed"), None)
    if previous is not None and previous.get("status") == condition["status"]:
        condition["lastTransitionTime"] = previous.get("lastTransitionTime")
    else:
        condition["lastTransitionTime"] = timefmt.rfc3339(now)
    return condition


def compute_status(stores: dict[str, Store], pdb: dict, now: float) -> dict:
    """The PDB's status for the pods that exist now, keeping its recent disruptedPods (kube's
    disruption controller; an empty selector matches every pod of the namespace)."""
    ns = pdb["metadata"]["namespace"]
    generation = pdb["metadata"].get("generation", 1)
    spec, old = pdb.get("spec") or {}, pdb.get("status") or {}
    selector = spec.get("selector")
    pods = [p for p in stores["pods"].list(ns).items
            if selector is not None and label_selector.matches(selector, p["metadata"].get(
                "labels"))]
    live = {p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")}
    disrupted = {name: at for name, at in (old.get("disruptedPods") or {}).items()
                 if name in live and timefmt.parse(at) + DISRUPTED_POD_TIMEOUT > now}
    healthy = sum(1 for p in pods if p["metadata"]["name"] in live and ready(p)
                  and p["metadata"]["name"] not in disrupted)
    min_available, max_unavailable = spec.get("minAvailable"), spec.get("maxUnavailable")
    try:
        if max_unavailable is not None or isinstance(min_available, str):
            expected = _expected_count(stores, ns, pods)
            if max_unavailable is not None:
                desired = max(0, expected - _scaled(max_unavailable, expected))
            else:
                desired = _scaled(min_available, expected)
        else:
            expected, desired = len(pods), int(min_available or 0)
    except ValueError as e:
        # kube's failSafe: nothing may be disrupted while the budget cannot be worked out
        return {**old, "disruptionsAllowed": 0,
                "conditions": [condition(0, old.get("observedGeneration", 0), old, now,
                                          "SyncFailed", str(e))]}
    allowed = max(healthy - desired, 0) if expected > 0 else 0
    out = {"observedGeneration": generation, "disruptionsAllowed": allowed,
           "currentHealthy": healthy, "desiredHealthy": desired, "expectedPods": expected,
           "conditions": [condition(allowed, generation, old, now)]}
    if disrupted:
        out["disruptedPods"] = disrupted
    return out


def refresh(stores: dict[str, Store], ns: str, name: str) -> dict:
    """Writes the PDB's current status (if it changed) and returns the PDB."""
    now = time.time()

    def mutate(pdb: dict) -> dict:
        pdb["status"] = compute_status(stores, pdb, now)
        return pdb
    return stores["poddisruptionbudgets"].guaranteed_update(ns, name, mutate,
                                                            subresource="status")


def refresh_all(stores: dict[str, Store]) -> None:
    for pdb in stores["poddisruptionbudgets"].list("").items:
        meta = pdb["metadata"]
        try:
            refresh(stores, meta["namespace"], meta["name"])
        except ApiError:
            continue  # deleted meanwhile
