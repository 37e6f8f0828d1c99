"""The StatefulSet controller, as kube's pkg/controller/statefulset: pods with stable names
`<set>-<ordinal>` (from spec.ordinals.start), hostname and subdomain, the labels
statefulset.kubernetes.io/pod-name, apps.kubernetes.io/pod-index and controller-revision-hash,
and one PersistentVolumeClaim `<template>-<set>-<ordinal>` per volumeClaimTemplate, created
before the pod and kept after it (unless the retention policy says Delete). OrderedReady makes
each pod in ordinal order and waits for it to be Running and Ready before the next, and removes
in reverse order one at a time; Parallel does all at once. RollingUpdate replaces pods from the
highest ordinal down to the partition, one at a time and only while the others are healthy;
OnDelete leaves that to the user. Revisions are ControllerRevisions; status carries
currentRevision/updateRevision and the counts of each."""
from __future__ import annotations

import copy
import logging
import re

from kubeapi import label_selector
from kubeapi.informer import NAMESPACE_INDEX, object_key, object_of, resource_path
from kubeapi.status import ApiError
from kubeapi.workqueue import RateLimitingQueue

from ..context import ControllerContext
from ..events import EventRecorder
from ..workers import start_workers
from .controller_ref import Claimer, owner_reference
from .history import REVISION_HASH, History
from .pod_util import controller_ref, is_available, is_ready, pods_path
from .replicaset import OWNER_INDEX, pod_controller_uid
from .workload_status import put_status

log = logging.getLogger("statefulset-controller")

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
WORKERS = 2


def sts_path(ns: str, name: str = "") -> str:
    base = f"/apis/apps/v1/namespaces/{ns}/statefulsets"
    return f"{base}/{name}" if name else base


def pvcs_path(ns: str, name: str = "") -> str:
    base = f"/api/v1/namespaces/{ns}/persistentvolumeclaims"
    return f"{base}/{name}" if name else base


def ordinal_of(sts: dict, pod: dict) -> int | None:
    """The ordinal in the pod's name when it is `<set>-<n>`, else None."""
    m = re.fullmatch(re.escape(sts["metadata"]["name"]) + r"-(\d+)", pod["metadata"]["name"])
    return int(m.group(1)) if m else None


def claim_name(template: dict, pod_name: str) -> str:
    return f"{template['metadata']['name']}-{pod_name}"


def start_ordinal(sts: dict) -> int:
    return (sts["spec"].get("ordinals") or {}).get("start") or 0


def _phase(pod: dict) -> str:
    return (pod.get("status") or {}).get("phase") or ""


def healthy(pod: dict, min_ready: int) -> bool:
    """Running and available (Ready for minReadySeconds), not being deleted."""
    return _phase(pod) == "Running" and is_available(pod, min_ready) and \
        not pod["metadata"].get("deletionTimestamp")


def template_of(revision: dict) -> dict:
    template = copy.deepcopy(revision["data"]["spec"]["template"])
    template.pop("$patch", None)
    return template


def new_pod(sts: dict, template: dict, revision_name: str, ordinal: int) -> dict:
    name = f"{sts['metadata']['name']}-{ordinal}"
    tmeta = template.get("metadata") or {}
    spec = copy.deepcopy(template.get("spec") or {})
    labels = {**(tmeta.get("labels") or {}), POD_NAME_LABEL: name,
              POD_INDEX_LABEL: str(ordinal), REVISION_HASH: revision_name}
    meta: dict = {"name": name, "labels": labels, "ownerReferences": [owner_reference(sts)]}
    for field in ("annotations", "finalizers"):
        if tmeta.get(field):
            meta[field] = copy.deepcopy(tmeta[field])
    spec["hostname"] = name
    if sts["spec"].get("serviceName"):
        spec["subdomain"] = sts["spec"]["serviceName"]
    claims = sts["spec"].get("volumeClaimTemplates") or []
    if claims:
        names = {c["metadata"]["name"] for c in claims}
        volumes = [v for v in spec.get("volumes") or [] if v.get("name") not in names]
        volumes += [{"name": c["metadata"]["name"],
                     "persistentVolumeClaim": {"claimName": claim_name(c, name)}}
                    for c in claims]
        spec["volumes"] = volumes
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def new_claim(sts: dict, template: dict, pod_name: str) -> dict:
    """The pod's claim of a volumeClaimTemplate: its labels plus the set's matchLabels, and an
    owner (the set) only when the retention policy deletes claims with the set."""
    claim = copy.deepcopy(template)
    claim.pop("status", None)
    meta = claim.setdefault("metadata", {})
    meta["name"] = claim_name(template, pod_name)
    meta["labels"] = {**(meta.get("labels") or {}),
                      **((sts["spec"].get("selector") or {}).get("matchLabels") or {})}
    for field in ("namespace", "uid", "resourceVersion", "creationTimestamp"):
        meta.pop(field, None)
    policy = sts["spec"].get("persistentVolumeClaimRetentionPolicy") or {}
    if policy.get("whenDeleted") == "Delete":
        meta["ownerReferences"] = [owner_reference(sts)]
    claim["apiVersion"], claim["kind"] = "v1", "PersistentVolumeClaim"
    return claim


class StatefulSetController:
    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.sets = ctx.informers.informer(resource_path("apps", "v1", "statefulsets"))
        self.pods = ctx.informers.informer(resource_path("", "v1", "pods"))
        self.pods.add_indexer(OWNER_INDEX, pod_controller_uid)
        self.claims = ctx.informers.informer(resource_path("", "v1", "persistentvolumeclaims"))
        revisions = ctx.informers.informer(resource_path("apps", "v1", "controllerrevisions"))
        self.history = History(ctx.client, revisions)
        self.queue = RateLimitingQueue(name="statefulset")
        self.recorder = EventRecorder(ctx.client, "statefulset-controller")
        self.sets.add_event_handler(on_add=self._enqueue,
                                    on_update=lambda old, new: self._enqueue(new),
                                    on_delete=lambda item: self._enqueue(object_of(item)))
        self.pods.add_event_handler(on_add=self._pod_event,
                                    on_update=lambda old, new: self._pod_changed(old, new),
                                    on_delete=lambda item: self._pod_event(object_of(item)))

    def start(self) -> None:
        start_workers(self.ctx, "statefulset", self.queue, self.sync,
                      [self.sets, self.pods, self.claims, self.history.revisions], WORKERS,
                      log)

    def _enqueue(self, sts: dict) -> None:
        self.queue.add(object_key(sts))

    def _pod_event(self, pod: dict) -> None:
        ref = controller_ref(pod)
        ns = pod["metadata"].get("namespace", "")
        if ref is not None:
            if ref.get("kind") == "StatefulSet":
                self.queue.add(f"{ns}/{ref.get('name')}")
            return
        labels = pod["metadata"].get("labels") or {}
        for sts in self.sets.store.by_index(NAMESPACE_INDEX, ns):
            if label_selector.matches(sts["spec"].get("selector"), labels):
                self._enqueue(sts)

    def _pod_changed(self, old: dict, new: dict) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return
        self._pod_event(old)
        self._pod_event(new)
        ref = controller_ref(new)
        if ref and ref.get("kind") == "StatefulSet" and not is_ready(old) and is_ready(new):
            sts = self.sets.store.get(f"{new['metadata']['namespace']}/{ref.get('name')}")
            min_ready = (sts or {}).get("spec", {}).get("minReadySeconds") or 0
            if min_ready:
                self.queue.add_after(object_key(sts), min_ready + 1)

    # sync

    def sync(self, key: str) -> None:
        cached = self.sets.store.get(key)
        if cached is None:
            return
        sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", **copy.deepcopy(cached)}
        ns, name = sts["metadata"]["namespace"], sts["metadata"]["name"]
        if label_selector.is_empty(sts["spec"].get("selector")):
            self.recorder.event(sts, "Warning", "SelectingAll",
                                "This statefulset is selecting all pods. A non-empty selector "
                                "is required.")
            return
        pods = [p for p in self.pods.store.by_index(NAMESPACE_INDEX, ns)
                if (controller_ref(p) or {}).get("uid") == sts["metadata"]["uid"] or
                label_selector.matches(sts["spec"].get("selector"), p["metadata"].get("labels"))]
        pods = Claimer(self.client, sts, lambda p: pods_path(ns, p["metadata"]["name"]),
                       sts_path(ns, name)).claim(pods)
        pods = [p for p in pods if ordinal_of(sts, p) is not None]
        owned = self.history.owned(sts)
        update, owned = self.history.current(sts, owned)
        status = sts.get("status") or {}
        current = next((r for r in owned
                        if r["metadata"]["name"] == status.get("currentRevision")), update)
        if not sts["metadata"].get("deletionTimestamp"):
            self._update(sts, pods, current, update)
        pods = [p for p in self.pods.store.by_index(NAMESPACE_INDEX, ns)
                if (controller_ref(p) or {}).get("uid") == sts["metadata"]["uid"] and
                ordinal_of(sts, p) is not None]
        new_status = self._status(sts, pods, current, update)
        live = {new_status["currentRevision"], new_status["updateRevision"]} | \
            {(p["metadata"].get("labels") or {}).get(REVISION_HASH, "") for p in pods}
        self.history.truncate(sts, owned, live)
        put_status(self.client, sts_path(ns, name), sts, new_status)

    def _revision_for(self, sts: dict, ordinal: int, current: dict, update: dict) -> dict:
        """Which revision a missing pod is made from: below the partition the current one."""
        strategy = sts["spec"].get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            partition = (strategy.get("rollingUpdate") or {}).get("partition") or 0
            if ordinal < start_ordinal(sts) + partition:
                return current
        return update

    def _update(self, sts: dict, pods: list[dict], current: dict, update: dict) -> None:
        """One pass of kube's updateStatefulSet (monotonic: OrderedReady stops at the first
        pod it has to wait for)."""
        spec = sts["spec"]
        ordered = spec.get("podManagementPolicy", "OrderedReady") == "OrderedReady"
        min_ready = spec.get("minReadySeconds") or 0
        first = start_ordinal(sts)
        wanted = range(first, first + spec.get("replicas", 1))
        by_ordinal = {ordinal_of(sts, p): p for p in pods}
        condemned = sorted((p for o, p in by_ordinal.items() if o not in wanted),
                           key=lambda p: ordinal_of(sts, p), reverse=True)
        for ordinal in wanted:
            pod = by_ordinal.get(ordinal)
            if pod is not None and _phase(pod) in ("Failed", "Succeeded") and \
                    not pod["metadata"].get("deletionTimestamp"):
                self._delete(sts, pod, "delete")
                if ordered:
                    return
                continue
            if pod is None:
                revision = self._revision_for(sts, ordinal, current, update)
                self._create(sts, new_pod(sts, template_of(revision),
                                          revision["metadata"]["name"], ordinal))
                if ordered:
                    return
                continue
            if pod["metadata"].get("deletionTimestamp"):
                if ordered:
                    return
                continue
            self._ensure_claims(sts, pod["metadata"]["name"])
            if ordered and not healthy(pod, min_ready):
                return
        for pod in condemned:
            if pod["metadata"].get("deletionTimestamp"):
                if ordered:
                    return
                continue
            if ordered and any(not healthy(p, min_ready) for p in pods
                               if p is not pod and not p["metadata"].get("deletionTimestamp")):
                return
            if (spec.get("persistentVolumeClaimRetentionPolicy") or {}).get("whenScaled") == \
                    "Delete":
                self._give_claims_to(sts, pod)
            self._delete(sts, pod, "delete")
            if ordered:
                return
        strategy = spec.get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return
        partition = (strategy.get("rollingUpdate") or {}).get("partition") or 0
        for ordinal in reversed(wanted):
            if ordinal < first + partition:
                break
            pod = by_ordinal.get(ordinal)
            if pod is None:
                return
            revision = (pod["metadata"].get("labels") or {}).get(REVISION_HASH)
            if revision != update["metadata"]["name"]:
                if not pod["metadata"].get("deletionTimestamp"):
                    self._delete(sts, pod, "update")
                return
            if not healthy(pod, min_ready):
                return

    def _ensure_claims(self, sts: dict, pod_name: str) -> None:
        ns = sts["metadata"]["namespace"]
        for template in sts["spec"].get("volumeClaimTemplates") or []:
            name = claim_name(template, pod_name)
            if self.claims.store.get(f"{ns}/{name}") is not None:
                continue
            try:
                self.client.create(pvcs_path(ns), new_claim(sts, template, pod_name))
            except ApiError as e:
                if e.code == 409:
                    continue
                self.recorder.event(sts, "Warning", "FailedCreate",
                                    f"create Claim {name} for Pod {pod_name} in StatefulSet "
                                    f"{sts['metadata']['name']} failed error: {e.message}")
                raise
            self.recorder.event(sts, "Normal", "SuccessfulCreate",
                                f"create Claim {name} Pod {pod_name} in StatefulSet "
                                f"{sts['metadata']['name']} success")

    def _give_claims_to(self, sts: dict, pod: dict) -> None:
        """whenScaled: Delete — the condemned pod becomes an owner of its claims, so that the
        garbage collector deletes them after it, as kube's retention policy does."""
        ns = sts["metadata"]["namespace"]
        ref = {"apiVersion": "v1", "kind": "Pod", "name": pod["metadata"]["name"],
               "uid": pod["metadata"]["uid"]}
        for template in sts["spec"].get("volumeClaimTemplates") or []:
            name = claim_name(template, pod["metadata"]["name"])
            claim = self.claims.store.get(f"{ns}/{name}")
            if claim is None:
                continue
            refs = claim["metadata"].get("ownerReferences") or []
            if any(r.get("uid") == ref["uid"] for r in refs):
                continue
            try:
                self.client.patch(pvcs_path(ns, name), {"metadata": {
                    "ownerReferences": refs + [ref], "uid": claim["metadata"]["uid"],
                    "resourceVersion": claim["metadata"]["resourceVersion"]}})
            except ApiError as e:
                if e.code not in (404, 409):
                    raise

    def _create(self, sts: dict, pod: dict) -> None:
        ns = sts["metadata"]["namespace"]
        name = pod["metadata"]["name"]
        self._ensure_claims(sts, name)
        try:
            self.client.create(pods_path(ns), pod)
        except ApiError as e:
            if e.code == 409:
                return
            self.recorder.event(sts, "Warning", "FailedCreate",
                                f"create Pod {name} in StatefulSet {sts['metadata']['name']} "
                                f"failed error: {e.message}")
            raise
        self.recorder.event(sts, "Normal", "SuccessfulCreate",
                            f"create Pod {name} in StatefulSet {sts['metadata']['name']} "
                            "successful")

    def _delete(self, sts: dict, pod: dict, why: str) -> None:
        ns, name = sts["metadata"]["namespace"], pod["metadata"]["name"]
        try:
            self.client.delete(pods_path(ns, name),
                               {"preconditions": {"uid": pod["metadata"]["uid"]}})
        except ApiError as e:
            if e.code in (404, 409):
                return
            raise
        self.recorder.event(sts, "Normal", "SuccessfulDelete",
                            f"{why} Pod {name} in StatefulSet {sts['metadata']['name']} "
                            "successful")

    def _status(self, sts: dict, pods: list[dict], current: dict, update: dict) -> dict:
        min_ready = sts["spec"].get("minReadySeconds") or 0
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        revisions = [(p["metadata"].get("labels") or {}).get(REVISION_HASH) for p in live]
        current_name, update_name = current["metadata"]["name"], update["metadata"]["name"]
        status: dict = {
            "observedGeneration": sts["metadata"].get("generation", 0),
            "replicas": len(live),
            "readyReplicas": sum(1 for p in live if is_ready(p)),
            "availableReplicas": sum(1 for p in live if is_available(p, min_ready)),
            "currentReplicas": revisions.count(current_name),
            "updatedReplicas": revisions.count(update_name),
            "currentRevision": current_name, "updateRevision": update_name,
            "collisionCount": (sts.get("status") or {}).get("collisionCount") or 0}
        replicas = sts["spec"].get("replicas", 1)
        strategy = (sts["spec"].get("updateStrategy") or {}).get("type", "RollingUpdate")
        # kube's completeRollingUpdate: every pod updated and ready makes update current.
        if strategy == "RollingUpdate" and status["updatedReplicas"] == replicas and \
                status["readyReplicas"] == replicas and status["replicas"] == replicas:
            status["currentRevision"] = update_name
            status["currentReplicas"] = status["updatedReplicas"]
        elif strategy == "OnDelete" and status["updatedReplicas"] == status["replicas"]:
            status["currentRevision"] = update_name
            status["currentReplicas"] = status["updatedReplicas"]
        for field in ("readyReplicas", "currentReplicas", "updatedReplicas",
                      "observedGeneration"):  # Go's omitempty; availableReplicas has none
            if not status[field]:
                del status[field]
        return status


def start(ctx: ControllerContext) -> None:
    StatefulSetController(ctx).start()
