"""policy/v1 PodDisruptionBudgets, their status (what kube's disruption controller computes:
healthy pods against the budget), and pods/eviction, which deletes a pod only when its budget
allows (kube's EvictionREST)."""
from __future__ import annotations

import math
import time

from kubeapi import label_selector, status, timefmt, workload_validation as checks
from kubeapi.status import ApiError

from .store import UPDATE_RETRIES, Store
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


def _condition(allowed: int, generation: int, old: dict, now: float, reason: str = "",
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
    healthy = sum(1 for p in pods if p["metadata"]["name"] in live and _ready(p)
                  and p["metadata"]["name"] not in disrupted)
    min_available, max_unavailable = spec.get("minAvailable"), spec.get("maxUnavailable")
    try:
        if max_unavailable is not None or isinstance(min_available, str):
            expected = _expected_count(stores, ns, pods)
            if max_unavailable is not None:
                desired = max(0, expected - _scaled(max_unavailable, expected, True))
            else:
                desired = _scaled(min_available, expected, True)
        else:
            expected, desired = len(pods), int(min_available or 0)
    except ValueError as e:
        # kube's failSafe: nothing may be disrupted while the budget cannot be worked out
        return {**old, "disruptionsAllowed": 0,
                "conditions": [_condition(0, old.get("observedGeneration", 0), old, now,
                                          "SyncFailed", str(e))]}
    allowed = max(healthy - desired, 0) if expected > 0 else 0
    out = {"observedGeneration": generation, "disruptionsAllowed": allowed,
           "currentHealthy": healthy, "desiredHealthy": desired, "expectedPods": expected,
           "conditions": [_condition(allowed, generation, old, now)]}
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


def _too_many_requests(cause: str, retry_after: int = 0) -> ApiError:
    return ApiError(429, "TooManyRequests", VIOLATION, retry_after=retry_after,
                    causes=[{"reason": "DisruptionBudget", "message": cause}])


def _needs(pdb_name: str, st: dict) -> ApiError:
    return _too_many_requests(f"The disruption budget {pdb_name} needs "
                              f"{st.get('desiredHealthy', 0)} healthy pods and has "
                              f"{st.get('currentHealthy', 0)} currently")


def evict(stores: dict[str, Store], ns: str, name: str, eviction: object,
          dry_run: bool = False) -> tuple[int, dict]:
    """POST pods/<name>/eviction (kube's EvictionREST): deletes the pod if no budget covers
    it or its budget allows one more disruption. Returns the HTTP code and Status."""
    if not isinstance(eviction, dict):
        raise status.bad_request("the request body must be a JSON or YAML object")
    if eviction.get("kind") not in (None, "Eviction"):
        raise status.bad_request(f"not a Eviction object: {eviction['kind']}")
    if (eviction.get("metadata") or {}).get("name") != name:
        raise status.bad_request("name in URL does not match name in Eviction object")
    options = eviction.get("deleteOptions") or {}
    if not isinstance(options, dict):
        raise status.bad_request("deleteOptions must be an object")
    dry_run = dry_run or "All" in (options.get("dryRun") or [])
    pods = stores["pods"]
    for _ in range(UPDATE_RETRIES):
        pod = pods.get(ns, name)
        if not _terminal_or_leaving(pod):
            failure = _spend_budget(stores, pod, dry_run)
            if failure is not None:
                return 500, failure
        delete_options = options
        pre = options.get("preconditions") or {}
        terminal = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") or \
            pod["metadata"].get("deletionTimestamp")
        if not terminal and not pre.get("resourceVersion"):
            # the pod must still be the one the budget was checked against
            delete_options = {**options, "preconditions": {
                **pre, "resourceVersion": pod["metadata"]["resourceVersion"]}}
        try:
            pods.delete(ns, name, delete_options, dry_run=dry_run)
        except ApiError as e:
            if e.code == 409 and not pre.get("resourceVersion"):
                continue
            raise
        return 201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    raise _too_many_requests(f"The disruption budget for {name} is still being processed by "
                             "the server.", 10)


def _spend_budget(stores: dict[str, Store], pod: dict, dry_run: bool) -> dict | None:
    """Takes one disruption from the pod's budget; 429 when there is none left. A Status to
    answer instead of deleting when more than one budget covers the pod."""
    ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    labels = pod["metadata"].get("labels") or {}
    # a budget with a missing or empty selector protects nothing here
    budgets = [b for b in stores["poddisruptionbudgets"].list(ns).items
               if not label_selector.is_empty((b.get("spec") or {}).get("selector")) and
               label_selector.matches(b["spec"]["selector"], labels)]
    if not budgets:
        return None
    if len(budgets) > 1:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "This pod has more than one PodDisruptionBudget, which the eviction "
                "subresource does not support.", "code": 500}
    pdb_name = budgets[0]["metadata"]["name"]
    pdb = refresh(stores, ns, pdb_name)
    st, spec = pdb["status"], pdb.get("spec") or {}
    if not _ready(pod) and (spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow" or (
            st.get("desiredHealthy", 0) > 0 and
            st.get("currentHealthy", 0) >= st.get("desiredHealthy", 0))):
        return None  # an unready pod does not count as healthy: nothing is spent
    now = time.time()

    def spend(current: dict) -> dict:
        cur = current["status"] = compute_status(stores, current, now)
        if cur.get("disruptionsAllowed", 0) < 0:
            raise ApiError(403, "Forbidden", f'poddisruptionbudget.policy "{pdb_name}" is '
                           "forbidden: pdb disruptions allowed is negative")
        if len(cur.get("disruptedPods") or {}) > MAX_DISRUPTED_PODS:
            raise ApiError(403, "Forbidden", f'poddisruptionbudget.policy "{pdb_name}" is '
                           "forbidden: DisruptedPods map too big - too many evictions not "
                           "confirmed by PDB controller")
        if cur.get("disruptionsAllowed", 0) == 0:
            raise _needs(pdb_name, cur)
        cur["disruptionsAllowed"] -= 1
        if cur["disruptionsAllowed"] == 0:
            cur["conditions"] = [_condition(0, cur["observedGeneration"], cur, now)]
        cur.setdefault("disruptedPods", {})[name] = timefmt.rfc3339(now)
        return current
    stores["poddisruptionbudgets"].guaranteed_update(ns, pdb_name, spend,
                                                     subresource="status", dry_run=dry_run)
    return None
