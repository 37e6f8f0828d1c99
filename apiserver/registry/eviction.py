"""pods/eviction (policy/v1 Eviction, what kubectl drain sends), as kube's EvictionREST: the
pod is deleted only if no PodDisruptionBudget covers it or its budget allows one more
disruption, else 429."""
from __future__ import annotations

import time

from kubeapi import label_selector, status, timefmt
from kubeapi.status import ApiError

from .disruption import compute_status, condition, ready, refresh
from .store import UPDATE_RETRIES, Store

MAX_DISRUPTED_PODS = 2000
VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."


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
    if not ready(pod) and (spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow" or (
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
            cur["conditions"] = [condition(0, cur["observedGeneration"], cur, now)]
        cur.setdefault("disruptedPods", {})[name] = timefmt.rfc3339(now)
        return current
    stores["poddisruptionbudgets"].guaranteed_update(ns, pdb_name, spend,
                                                     subresource="status", dry_run=dry_run)
    return None
