"""policy/v1 PodDisruptionBudgets, their status (what kube's disruption controller computes:
healthy pods against the budget), and pods/eviction, which deletes a pod only when its budget
allows (kube's EvictionREST)."""
from __future__ import annotations

import math
import time

from kubeapi import label_selector, status, timefmt, workload_validation as checks
from kubeapi.status import ApiError

from .store import Store
from .workload import WorkloadStrategy

# An evicted pod counts as disrupted, not healthy, until it is gone or this much time passed.
DISRUPTED_POD_TIMEOUT = 120.0
MAX_DISRUPTED_PODS = 2000
VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."


class PodDisruptionBudgetStrategy(WorkloadStrategy):
    kind = "PodDisruptionBudget"
    initial_status = {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0,
                      "expectedPods": 0}

    def validate(self, obj: dict) -> list[dict]:
        return checks.validate_pdb(obj)


def _ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _scaled(value: object, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        exact = int(value[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value or 0)


def _controller_scale(stores: dict[str, Store], pod: dict) -> int | None:
    """The replicas of the workload owning the pod (a Deployment through its ReplicaSet)."""
    ns = pod["metadata"].get("namespace", "")
    ref = next((r for r in pod["metadata"].get("ownerReferences") or [] if r.get("controller")),
               None)
    plural = {"ReplicaSet": "replicasets", "StatefulSet": "statefulsets",
              "Deployment": "deployments"}.get((ref or {}).get("kind", ""))
    if plural is None:
        return None
    try:
        owner = stores[plural].get(ns, ref["name"])
    except ApiError:
        return None
    if plural == "replicasets":
        parent = next((r for r in owner["metadata"].get("ownerReferences") or []
                       if r.get("controller") and r.get("kind") == "Deployment"), None)
        if parent is not None:
            try:
                owner = stores["deployments"].get(ns, parent["name"])
            except ApiError:
                pass
    return int((owner.get("spec") or {}).get("replicas", 0))


def compute_status(stores: dict[str, Store], pdb: dict, now: float) -> dict:
    """The PDB's status for the pods that exist now, keeping its recent disruptedPods."""
    ns = pdb["metadata"]["namespace"]
    spec, old = pdb.get("spec") or {}, pdb.get("status") or {}
    selector = spec.get("selector")
    pods = [p for p in stores["pods"].list(ns).items
            if selector is not None and label_selector.matches(selector, p["metadata"].get(
                "labels"))]
    names = {p["metadata"]["name"] for p in pods}
    disrupted = {name: at for name, at in (old.get("disruptedPods") or {}).items()
                 if name in names and timefmt.parse(at) + DISRUPTED_POD_TIMEOUT > now}
    healthy = sum(1 for p in pods if not p["metadata"].get("deletionTimestamp") and _ready(p)
                  and p["metadata"]["name"] not in disrupted)
    min_available, max_unavailable = spec.get("minAvailable"), spec.get("maxUnavailable")
    if max_unavailable is not None or isinstance(min_available, str):
        scales: dict[str, int] = {}
        for p in pods:
            owner = next((r.get("uid") for r in p["metadata"].get("ownerReferences") or []
                          if r.get("controller")), p["metadata"]["name"])
            scales.setdefault(owner, _controller_scale(stores, p) or 1)
        expected = sum(scales.values())
        if max_unavailable is not None:
            desired = max(0, expected - _scaled(max_unavailable, expected, True))
        else:
            desired = _scaled(min_available, expected, True)
    else:
        expected = len(pods)
        desired = int(min_available or 0)
    allowed = healthy - desired if expected > 0 else 0
    allowed = max(allowed, 0)
    condition = {"type": "DisruptionAllowed", "status": "True" if allowed else "False",
                 "reason": "SufficientPods" if allowed else "InsufficientPods", "message": "",
                 "observedGeneration": pdb["metadata"].get("generation", 1)}
    previous = next((c for c in old.get("conditions") or []
                     if c.get("type") == "DisruptionAllowed"), None)
    same = previous is not None and previous.get("status") == condition["status"]
    condition["lastTransitionTime"] = previous.get("lastTransitionTime") if same and previous \
        else timefmt.rfc3339(now)
    out = {"observedGeneration": pdb["metadata"].get("generation", 1),
           "disruptionsAllowed": allowed, "currentHealthy": healthy,
           "desiredHealthy": desired, "expectedPods": expected, "conditions": [condition]}
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


def _terminal_or_leaving(pod: dict) -> bool:
    """Pods whose eviction no budget guards (kube's canIgnorePDB)."""
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed", "Pending") or \
        bool(pod["metadata"].get("deletionTimestamp"))


def _too_many_requests(message: str, cause: str) -> ApiError:
    return ApiError(429, "TooManyRequests", message,
                    causes=[{"reason": "DisruptionBudget", "message": cause}])


def evict(stores: dict[str, Store], ns: str, name: str, eviction: object,
          dry_run: bool = False) -> dict:
    """POST pods/<name>/eviction: the pod's deletion, if its PodDisruptionBudget allows it."""
    if not isinstance(eviction, dict):
        raise status.bad_request("the request body must be a JSON or YAML object")
    if eviction.get("kind") not in (None, "Eviction"):
        raise status.bad_request(f"the kind in the data ({eviction['kind']}) does not match "
                                 "the expected kind (Eviction)")
    ev_name = (eviction.get("metadata") or {}).get("name")
    if ev_name and ev_name != name:
        raise status.bad_request("name in URL does not match name in Eviction object")
    options = eviction.get("deleteOptions") or {}
    if not isinstance(options, dict):
        raise status.bad_request("deleteOptions must be an object")
    pods = stores["pods"]
    pod = pods.get(ns, name)
    if not _terminal_or_leaving(pod):
        _spend_budget(stores, pod, dry_run)
    pods.delete(ns, name, options, dry_run=dry_run)
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "code": 201}


def _spend_budget(stores: dict[str, Store], pod: dict, dry_run: bool) -> None:
    ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    labels = pod["metadata"].get("labels") or {}
    budgets = [b for b in stores["poddisruptionbudgets"].list(ns).items
               if (b.get("spec") or {}).get("selector") is not None and
               label_selector.matches(b["spec"]["selector"], labels)]
    if not budgets:
        return
    if len(budgets) > 1:
        raise ApiError(500, "InternalError", "This pod has more than one PodDisruptionBudget, "
                       "which the eviction subresource does not support.")
    pdb_name = budgets[0]["metadata"]["name"]
    pdb = refresh(stores, ns, pdb_name)
    st, spec = pdb["status"], pdb.get("spec") or {}
    if not _ready(pod):
        if spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow" or (
                st["desiredHealthy"] > 0 and st["currentHealthy"] >= st["desiredHealthy"]):
            return
    if len(st.get("disruptedPods") or {}) > MAX_DISRUPTED_PODS:
        raise ApiError(403, "Forbidden", "DisruptedPods map too big - too many evictions not "
                       "confirmed by PDB controller")
    if st["disruptionsAllowed"] <= 0:
        raise _too_many_requests(VIOLATION, f"The disruption budget {pdb_name} needs "
                                 f"{st['desiredHealthy']} healthy pods and has "
                                 f"{st['currentHealthy']} currently")
    if dry_run:
        return
    now = time.time()

    def spend(current: dict) -> dict:
        cur = current["status"] = compute_status(stores, current, now)
        if cur["disruptionsAllowed"] <= 0:
            raise _too_many_requests(VIOLATION, f"The disruption budget {pdb_name} needs "
                                     f"{cur['desiredHealthy']} healthy pods and has "
                                     f"{cur['currentHealthy']} currently")
        cur["disruptionsAllowed"] -= 1
        cur.setdefault("disruptedPods", {})[name] = timefmt.rfc3339(now)
        return current
    stores["poddisruptionbudgets"].guaranteed_update(ns, pdb_name, spend, subresource="status")
