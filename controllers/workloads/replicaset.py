"""The ReplicaSet controller, as kube's pkg/controller/replicaset: keeps spec.replicas active
pods made from the template (generateName `<rs>-`, a controller ownerReference with
blockOwnerDeletion), adopts orphans its selector matches and releases pods it no longer
matches, creates in slow-start batches (1, 2, 4, ... so that a failing template costs one
request, not hundreds), deletes the pods to lose first in kube's ActivePodsWithRanks order,
and waits for its informer to see its own creations and deletions (expectations) before it
counts again. Status: replicas, fullyLabeledReplicas, readyReplicas, availableReplicas
(minReadySeconds), observedGeneration and the ReplicaFailure condition when a create or
delete fails."""
from __future__ import annotations

import copy
import logging
from concurrent.futures import ThreadPoolExecutor

from kubeapi import label_selector, timefmt
from kubeapi.informer import NAMESPACE_INDEX, object_key, object_of, resource_path
from kubeapi.status import ApiError
from kubeapi.workqueue import RateLimitingQueue

from ..context import ControllerContext
from ..events import EventRecorder
from ..workers import start_workers
from .controller_ref import Claimer, owner_reference, resolve
from .expectations import Expectations
from .pod_control import PodControl
from .pod_util import (controller_ref, deletion_order, is_active, is_available, is_ready,
                       node_ranks, pods_path)

log = logging.getLogger("replicaset-controller")

BURST_REPLICAS = 500        # kube's BurstReplicas: most pods created or deleted in one sync
SLOW_START_INITIAL_BATCH = 1
PARALLEL_REQUESTS = 16
OWNER_INDEX = "replicaset-controller-uid"


def pod_controller_uid(pod: dict) -> list[str]:
    ref = controller_ref(pod)
    return [ref["uid"]] if ref and ref.get("uid") else []


def rs_path(namespace: str, name: str = "") -> str:
    base = f"/apis/apps/v1/namespaces/{namespace}/replicasets"
    return f"{base}/{name}" if name else base


def pod_from_template(rs: dict) -> dict:
    """controller.GetPodFromTemplate: the template's labels, annotations, finalizers and spec."""
    template = copy.deepcopy(rs["spec"].get("template") or {})
    tmeta = template.get("metadata") or {}
    meta: dict = {"generateName": f"{rs['metadata']['name']}-",
                  "ownerReferences": [owner_reference({"apiVersion": "apps/v1",
                                                       "kind": "ReplicaSet", **rs})]}
    for field in ("labels", "annotations", "finalizers"):
        if tmeta.get(field):
            meta[field] = tmeta[field]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template.get("spec")}


def slow_start_batch(count: int, initial: int, fn) -> tuple[int, ApiError | None]:
    """Calls fn() count times in batches of 1, 2, 4, ... run in parallel; stops after the first
    batch with a failure. (successes, first error)."""
    successes, remaining, batch = 0, count, min(count, initial)
    with ThreadPoolExecutor(max_workers=PARALLEL_REQUESTS) as pool:
        while batch > 0:
            errors = [e for e in pool.map(lambda _: _call(fn), range(batch)) if e is not None]
            successes += batch - len(errors)
            if errors:
                return successes, errors[0]
            remaining -= batch
            batch = min(2 * batch, remaining)
    return successes, None


def _call(fn) -> ApiError | None:
    try:
        fn()
    except ApiError as e:
        return e
    return None


def calculate_status(rs: dict, pods: list[dict], terminating: int,
                     manage_error: ApiError | None, now: float | None = None) -> dict:
    """replica_set_utils.calculateStatus, fields that Go omits when zero left out;
    terminatingReplicas (DeploymentReplicaSetTerminatingReplicas, on by default since 1.35)
    is a pointer, so written even when 0."""
    spec = rs["spec"]
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    min_ready = spec.get("minReadySeconds") or 0
    labeled = ready = available = 0
    for pod in pods:
        labels = pod["metadata"].get("labels") or {}
        if all(labels.get(k) == v for k, v in template_labels.items()):
            labeled += 1
        if is_ready(pod):
            ready += 1
            if is_available(pod, min_ready, now):
                available += 1
    status: dict = {"replicas": len(pods), "terminatingReplicas": terminating}
    for field, value in (("fullyLabeledReplicas", labeled), ("readyReplicas", ready),
                         ("availableReplicas", available),
                         ("observedGeneration", rs["metadata"].get("generation") or 0)):
        if value:
            status[field] = value
    conditions = [c for c in (rs.get("status") or {}).get("conditions") or []]
    failure = next((c for c in conditions if c.get("type") == "ReplicaFailure"), None)
    if manage_error is not None and failure is None:
        diff = len(pods) - (spec.get("replicas") or 0)
        reason = "FailedCreate" if diff < 0 else ("FailedDelete" if diff > 0 else "")
        conditions.append({"type": "ReplicaFailure", "status": "True",
                           "lastTransitionTime": timefmt.rfc3339(now), "reason": reason,
                           "message": manage_error.message})
    elif manage_error is None and failure is not None:
        conditions = [c for c in conditions if c.get("type") != "ReplicaFailure"]
    if conditions:
        status["conditions"] = conditions
    return status


class ReplicaSetController:
    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.rss = ctx.informers.informer(resource_path("apps", "v1", "replicasets"))
        self.pods = ctx.informers.informer(resource_path("", "v1", "pods"))
        self.pods.add_indexer(OWNER_INDEX, pod_controller_uid)
        self.queue = RateLimitingQueue(name="replicaset")
        self.expectations = Expectations()
        self.recorder = EventRecorder(ctx.client, "replicaset-controller")
        self.control = PodControl(ctx.client, self.recorder, self.expectations)
        self.rss.add_event_handler(on_add=self._enqueue,
                                   on_update=lambda old, new: self._enqueue(new),
                                   on_delete=self._rs_deleted)
        self.pods.add_event_handler(on_add=self._pod_added, on_update=self._pod_updated,
                                    on_delete=self._pod_deleted)

    def start(self) -> None:
        start_workers(self.ctx, "replicaset", self.queue, self.sync, [self.rss, self.pods],
                      self.ctx.options.concurrent_replicaset_syncs, log)

    # events

    def _enqueue(self, rs: dict) -> None:
        self.queue.add(object_key(rs))

    def _rs_deleted(self, item: object) -> None:
        key = object_key(object_of(item))
        self.expectations.forget(key)
        self.queue.add(key)

    def _resolve(self, namespace: str, ref: dict | None) -> dict | None:
        return resolve(self.rss.store, namespace, ref, "ReplicaSet")

    def _matching(self, pod: dict) -> list[dict]:
        labels = pod["metadata"].get("labels") or {}
        return [rs for rs in self.rss.store.by_index(NAMESPACE_INDEX,
                                                     pod["metadata"].get("namespace", ""))
                if not label_selector.is_empty(rs["spec"].get("selector")) and
                label_selector.matches(rs["spec"].get("selector"), labels)]

    def _pod_added(self, pod: dict) -> None:
        if pod["metadata"].get("deletionTimestamp"):
            self._pod_deleted(pod)
            return
        ref = controller_ref(pod)
        if ref is not None:
            rs = self._resolve(pod["metadata"]["namespace"], ref)
            if rs is not None:
                self.expectations.creation_observed(object_key(rs))
                self._enqueue(rs)
            return
        for rs in self._matching(pod):
            self._enqueue(rs)

    def _pod_updated(self, old: dict, new: dict) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return
        labels_changed = old["metadata"].get("labels") != new["metadata"].get("labels")
        if new["metadata"].get("deletionTimestamp"):
            self._pod_deleted(new)
            if labels_changed:
                self._pod_deleted(old)
            return
        ns = new["metadata"]["namespace"]
        old_ref, new_ref = controller_ref(old), controller_ref(new)
        if old_ref != new_ref and old_ref is not None:
            rs = self._resolve(ns, old_ref)
            if rs is not None:
                self._enqueue(rs)
        if new_ref is not None:
            rs = self._resolve(ns, new_ref)
            if rs is None:
                return
            self._enqueue(rs)
            min_ready = rs["spec"].get("minReadySeconds") or 0
            if min_ready and not is_ready(old) and is_ready(new):
                self.queue.add_after(object_key(rs), min_ready + 1)
            return
        if labels_changed or old_ref != new_ref:
            for rs in self._matching(new):
                self._enqueue(rs)

    def _pod_deleted(self, item: object) -> None:
        pod = object_of(item)
        rs = self._resolve(pod["metadata"].get("namespace", ""), controller_ref(pod))
        if rs is None:
            return
        key = object_key(rs)
        self.expectations.deletion_observed(key, object_key(pod))
        self.queue.add(key)

    # sync

    def sync(self, key: str) -> None:
        rs = self.rss.store.get(key)
        if rs is None:
            self.expectations.forget(key)
            return
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", **rs}
        ns = rs["metadata"]["namespace"]
        satisfied = self.expectations.satisfied(key)
        all_pods = self.pods.store.by_index(NAMESPACE_INDEX, ns)
        pods = [p for p in all_pods if is_active(p)]
        terminating = sum(1 for p in all_pods if _terminating_of(rs, p))
        claimer = Claimer(self.client, rs,
                          lambda p: pods_path(ns, p["metadata"]["name"]),
                          rs_path(ns, rs["metadata"]["name"]))
        pods = claimer.claim(pods)
        manage_error = None
        if satisfied and not rs["metadata"].get("deletionTimestamp"):
            manage_error = self._manage(key, rs, pods)
        status = calculate_status(rs, pods, terminating, manage_error)
        updated = self._update_status(rs, status)
        spec_replicas = rs["spec"].get("replicas", 1)
        min_ready = rs["spec"].get("minReadySeconds") or 0
        if manage_error is None and updated is not None and min_ready and \
                status.get("readyReplicas", 0) == spec_replicas and \
                status.get("availableReplicas", 0) != spec_replicas:
            self.queue.add_after(key, min_ready)
        if manage_error is not None:
            raise manage_error

    def _manage(self, key: str, rs: dict, pods: list[dict]) -> ApiError | None:
        ns = rs["metadata"]["namespace"]
        diff = len(pods) - rs["spec"].get("replicas", 1)
        if diff < 0:
            count = min(-diff, BURST_REPLICAS)
            self.expectations.expect_creations(key, count)
            body = pod_from_template(rs)

            def create() -> None:
                try:
                    pod = self.client.create(pods_path(ns), copy.deepcopy(body))
                except ApiError as e:
                    if _namespace_terminating(e):
                        return  # the namespace's deletion takes the ReplicaSet too; no noise
                    self.recorder.event(rs, "Warning", "FailedCreate",
                                        f"Error creating: {e.message}")
                    raise
                self.recorder.event(rs, "Normal", "SuccessfulCreate",
                                    f"Created pod: {pod['metadata']['name']}")

            done, error = slow_start_batch(count, SLOW_START_INITIAL_BATCH, create)
            for _ in range(count - done):
                self.expectations.creation_observed(key)
            return error
        if diff > 0:
            count = min(diff, BURST_REPLICAS)
            owner = controller_ref(rs)
            related = self._related_pods(rs, owner) if owner else pods
            victims = deletion_order(pods, node_ranks(pods, related))[:count]
            self.expectations.expect_deletions(key, [object_key(p) for p in victims])

            def delete(pod: dict) -> ApiError | None:
                try:
                    self.control.delete(key, rs, pod)
                except ApiError as e:
                    if e.code == 404:
                        return None
                    self.recorder.event(rs, "Warning", "FailedDelete",
                                        f"Error deleting: {e.message}")
                    return e
                return None

            with ThreadPoolExecutor(max_workers=PARALLEL_REQUESTS) as pool:
                errors = [e for e in pool.map(delete, victims) if e is not None]
            return errors[0] if errors else None
        return None

    def _related_pods(self, rs: dict, owner: dict) -> list[dict]:
        """The active pods of every ReplicaSet with the same controller as this one."""
        pods: list[dict] = []
        for other in self.rss.store.by_index(NAMESPACE_INDEX, rs["metadata"]["namespace"]):
            ref = controller_ref(other)
            if ref and ref.get("uid") == owner.get("uid"):
                pods += [p for p in self.pods.store.by_index(OWNER_INDEX,
                                                              other["metadata"]["uid"])
                         if is_active(p)]
        return pods

    def _update_status(self, rs: dict, status: dict) -> dict | None:
        """PUT /status when it differs; on a conflict once more from a fresh read, as kube's
        updateReplicaSetStatus. The ReplicaSet as written (or as it was)."""
        current = rs
        for attempt in range(2):
            if _same_status(current.get("status") or {}, status):
                return current
            body = {**current, "status": status}
            meta = current["metadata"]
            try:
                return self.client.request(
                    "PUT", f"{rs_path(meta['namespace'], meta['name'])}/status", body)
            except ApiError as e:
                if e.code == 404:
                    return None
                if e.code != 409 or attempt:
                    raise
                current = self.client.get(rs_path(meta["namespace"], meta["name"]))
        return None


def _namespace_terminating(e: ApiError) -> bool:
    """kube's NamespaceTerminatingCause (our server says so in the message only)."""
    return e.code == 403 and (
        any(c.get("type") == "NamespaceTerminating" for c in e.causes) or
        "because it is being terminated" in e.message)


def _terminating_of(rs: dict, pod: dict) -> bool:
    """FilterTerminatingPods + FilterClaimedPods: being deleted, not finished, ours."""
    ref = controller_ref(pod)
    return bool(pod["metadata"].get("deletionTimestamp")) and \
        (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed") and \
        ref is not None and ref.get("uid") == rs["metadata"]["uid"] and \
        label_selector.matches(rs["spec"].get("selector"), pod["metadata"].get("labels"))


def _same_status(old: dict, new: dict) -> bool:
    """Equal as Go compares them: an omitted int is 0, but terminatingReplicas is a pointer."""
    def strip(s: dict) -> dict:
        return {k: v for k, v in s.items()
                if k in ("replicas", "terminatingReplicas") or v not in (0, None, [])}
    return strip(old) == strip(new)


def start(ctx: ControllerContext) -> None:
    ReplicaSetController(ctx).start()
