"""The Job controller, as kube's pkg/controller/job (1.31+): runs pods from the template until
spec.completions succeed (at most spec.parallelism at a time), counting each finished pod once
through the job-tracking finalizer (the pod's uid goes into status.uncountedTerminatedPods, the
finalizer is removed, then the uid moves into succeeded/failed); Indexed jobs give each pod its
completion index (annotation, label, hostname and JOB_COMPLETION_INDEX) and keep
status.completedIndexes. Failures past backoffLimit (failed pods, or container restarts under
restartPolicy OnFailure) and activeDeadlineSeconds end the job: first the FailureTarget
condition and the deletion of its pods, then Failed once none is left; success is
SuccessCriteriaMet, then Complete with completionTime. Pods that failed are replaced after kube's
exponential backoff (10 s, doubling per failure in a row, at most 6 min)."""
from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable

from kubeapi import label_selector, timefmt
from kubeapi.informer import NAMESPACE_INDEX, object_key, object_of, resource_path
from kubeapi.restclient import ApiClient
from kubeapi.status import ApiError
from kubeapi.workqueue import RateLimitingQueue

from ..context import ControllerContext
from ..events import EventRecorder
from ..fresh_read import fresh_read
from ..workers import start_workers
from . import job_failure_policy as failure_policy
from .controller_ref import Claimer, owner_reference, resolve
from .expectations import Expectations
from .pod_control import PodControl
from .pod_util import controller_ref, is_ready, pods_path
from .replicaset import OWNER_INDEX, pod_controller_uid
from .workload_status import put_status

log = logging.getLogger("job-controller")

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
INDEX_KEY = "batch.kubernetes.io/job-completion-index"
INDEX_ENV = "JOB_COMPLETION_INDEX"
FAILURE_COUNT = "batch.kubernetes.io/job-index-failure-count"
DEFAULT_BACKOFF = 10.0
MAX_BACKOFF = 360.0
WORKERS = 3
ORPHAN_PREFIX = "orphan-pod:"  # queue keys of pods to let go, beside the jobs' keys
DEADLINE_MESSAGE = "Job was active longer than specified deadline"
MESSAGES = {"BackoffLimitExceeded": "Job has reached the specified backoff limit",
            "DeadlineExceeded": DEADLINE_MESSAGE,
            "FailedIndexes": "Job has failed indexes",
            "MaxFailedIndexesExceeded": "Job has exceeded the specified maximal number of "
                                        "failed indexes"}
COMPLETE_MESSAGE = "Reached expected number of succeeded pods"


def jobs_path(ns: str, name: str = "") -> str:
    base = f"/apis/batch/v1/namespaces/{ns}/jobs"
    return f"{base}/{name}" if name else base


def running_job(client: ApiClient, ns: str, ref: dict) -> bool:
    """Whether the Job a reference names is, as the API has it now (past the cache), that same
    Job and not finished."""
    job = fresh_read(client, jobs_path(ns, ref.get("name", "")))
    return job is not None and job["metadata"].get("uid") == ref.get("uid") and not finished(job)


def condition(job: dict, type_: str) -> dict | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_ and c.get("status") == "True":
            return c
    return None


def finished(job: dict) -> dict | None:
    """The Complete or Failed condition when the job has ended."""
    return condition(job, "Complete") or condition(job, "Failed")


def parse_indexes(text: str | None) -> set[int]:
    """completedIndexes ("1,3-5") as a set."""
    out: set[int] = set()
    for part in (text or "").split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        out.update(range(int(low), int(high or low) + 1))
    return out


def format_indexes(indexes: set[int]) -> str:
    """Ranges of consecutive indexes joined by commas, as kube writes completedIndexes."""
    parts: list[str] = []
    ordered = sorted(indexes)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def pod_index(pod: dict) -> int | None:
    meta = pod["metadata"]
    value = (meta.get("annotations") or {}).get(INDEX_KEY, (meta.get("labels") or {}).get(INDEX_KEY))
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _phase(pod: dict) -> str:
    return (pod.get("status") or {}).get("phase") or ""


def is_failed(pod: dict, job: dict) -> bool:
    """kube's isPodFailed: Failed, or deleted before succeeding unless the job only replaces
    pods that reached Failed."""
    if _phase(pod) == "Failed":
        return True
    if job["spec"].get("podReplacementPolicy") == "Failed":
        return False
    return bool(pod["metadata"].get("deletionTimestamp")) and _phase(pod) != "Succeeded"


def is_terminating(pod: dict) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp")) and \
        _phase(pod) not in ("Succeeded", "Failed")


def restarts(pod: dict) -> int:
    status = pod.get("status") or {}
    return sum(c.get("restartCount", 0) for c in (status.get("containerStatuses") or []) +
               (status.get("initContainerStatuses") or []))


def index_failures(pod: dict) -> int:
    """How many pods of this pod's index failed before it (backoffLimitPerIndex)."""
    try:
        return int((pod["metadata"].get("annotations") or {}).get(FAILURE_COUNT, "0"))
    except ValueError:
        return 0


def pod_from_template(job: dict, index: int | None, failures: int = 0) -> dict:
    """The pod the job creates: the template, the tracking finalizer, the controller reference;
    an Indexed job's index as annotation, label, hostname and environment, and with
    backoffLimitPerIndex the index's failures so far."""
    template = copy.deepcopy(job["spec"].get("template") or {})
    tmeta = template.get("metadata") or {}
    spec = template.get("spec") or {}
    name = job["metadata"]["name"]
    meta: dict = {"generateName": f"{name}-" if index is None else f"{name}-{index}-",
                  "labels": dict(tmeta.get("labels") or {}),
                  "annotations": dict(tmeta.get("annotations") or {}),
                  "finalizers": [*(tmeta.get("finalizers") or []), TRACKING_FINALIZER],
                  "ownerReferences": [owner_reference(job)]}
    if index is not None:
        meta["annotations"][INDEX_KEY] = str(index)
        if job["spec"].get("backoffLimitPerIndex") is not None:
            meta["annotations"][FAILURE_COUNT] = str(failures)
        meta["labels"][INDEX_KEY] = str(index)
        spec.setdefault("hostname", f"{name}-{index}")
        env_var = {"name": INDEX_ENV, "valueFrom": {"fieldRef": {
            "apiVersion": "v1", "fieldPath": f"metadata.labels['{INDEX_KEY}']"}}}
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            if not any(e.get("name") == INDEX_ENV for e in c.get("env") or []):
                c["env"] = [*(c.get("env") or []), env_var]
    for field in ("labels", "annotations"):
        if not meta[field]:
            del meta[field]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def success_policy_match(job: dict) -> str:
    """The message of the first successPolicy rule an Indexed job's completed indexes meet
    (succeededIndexes, all of them or succeededCount of them; or succeededCount of any)."""
    if job["spec"].get("completionMode") != "Indexed":
        return ""
    done = parse_indexes((job.get("status") or {}).get("completedIndexes"))
    for number, rule in enumerate((job["spec"].get("successPolicy") or {}).get("rules") or []):
        if rule.get("succeededIndexes") is not None:
            wanted = parse_indexes(rule["succeededIndexes"])
            have, need = len(done & wanted), rule.get("succeededCount", len(wanted))
        else:
            have, need = len(done), rule.get("succeededCount", 0)
        if need and have >= need:
            return f"Matched rules at index {number}"
    return ""


def new_condition(type_: str, reason: str, message: str, now: float) -> dict:
    stamp = timefmt.rfc3339(now)
    return {"type": type_, "status": "True", "lastProbeTime": stamp,
            "lastTransitionTime": stamp, "reason": reason, "message": message}


class _Backoff:
    """Failures in a row per job (reset by a success) and the last one's time, as kube's
    backoffRecord: the next pod waits base * 2^(failures-1) after that failure."""

    def __init__(self, base: float) -> None:
        self.base = base
        self._lock = threading.Lock()
        self._records: dict[str, tuple[int, float]] = {}

    def record(self, key: str, failures: int, successes: int, now: float) -> None:
        with self._lock:
            count, at = self._records.get(key, (0, 0.0))
            if successes:
                count, at = 0, 0.0
            if failures:
                count, at = count + failures, now
            self._records[key] = (count, at)

    def remaining(self, key: str, now: float) -> float:
        with self._lock:
            count, at = self._records.get(key, (0, 0.0))
        if not count or self.base <= 0:
            return 0.0
        return max(0.0, at + min(self.base * 2 ** (count - 1), MAX_BACKOFF) - now)

    def forget(self, key: str) -> None:
        with self._lock:
            self._records.pop(key, None)


class _Released:
    """Uids of pods whose tracking finalizer this controller removed and whose informer copy
    may still show it (kube's finalizer expectations): such a pod is not counted again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._uids: set[str] = set()

    def add(self, uid: str) -> None:
        with self._lock:
            self._uids.add(uid)

    def discard(self, uid: str) -> None:
        with self._lock:
            self._uids.discard(uid)

    def seen(self, pod: dict) -> None:
        """The informer's copy of the pod: once without the finalizer it is done."""
        if TRACKING_FINALIZER not in (pod["metadata"].get("finalizers") or []):
            self.discard(pod["metadata"].get("uid", ""))

    def __contains__(self, uid: str) -> bool:
        with self._lock:
            return uid in self._uids


class JobController:
    def __init__(self, ctx: ControllerContext, clock: Callable[[], float] = time.time) -> None:
        self.ctx = ctx
        self.client: ApiClient = ctx.client
        self.clock = clock
        self.jobs = ctx.informers.informer(resource_path("batch", "v1", "jobs"))
        self.pods = ctx.informers.informer(resource_path("", "v1", "pods"))
        self.pods.add_indexer(OWNER_INDEX, pod_controller_uid)
        self.queue = RateLimitingQueue(name="job")
        self.expectations = Expectations()
        self.released = _Released()
        self.backoff = _Backoff(ctx.options.extra.get("job_pod_failure_backoff",
                                                      DEFAULT_BACKOFF))
        self.recorder = EventRecorder(ctx.client, "job-controller")
        self.control = PodControl(ctx.client, self.recorder, self.expectations)
        self.jobs.add_event_handler(on_add=self._enqueue,
                                    on_update=lambda old, new: self._enqueue(new),
                                    on_delete=self._job_deleted)
        self.pods.add_event_handler(on_add=self._pod_event,
                                    on_update=lambda old, new: self._pod_changed(old, new),
                                    on_delete=lambda item: self._pod_event(object_of(item), True))

    def start(self) -> None:
        start_workers(self.ctx, "job", self.queue, self.sync, [self.jobs, self.pods], WORKERS,
                      log)

    # events

    def _enqueue(self, job: dict) -> None:
        self.queue.add(object_key(job))

    def _job_deleted(self, item: object) -> None:
        key = object_key(object_of(item))
        self.expectations.forget(key)
        self.backoff.forget(key)
        self.queue.add(key)

    def _owner(self, pod: dict) -> dict | None:
        return resolve(self.jobs.store, pod["metadata"].get("namespace", ""), controller_ref(pod),
                       "Job")

    def _pod_event(self, pod: dict, deleted: bool = False) -> None:
        if deleted:
            self.released.discard(pod["metadata"].get("uid", ""))
        job = self._owner(pod)
        if job is None:
            if not deleted:
                self._maybe_orphan(pod)
            return
        key = object_key(job)
        self.expectations.pod_observed(key, pod, deleted)
        self.queue.add(key)

    def _pod_changed(self, old: dict, new: dict) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return
        self.released.seen(new)
        if self._owner(new) is None:
            self._maybe_orphan(new)
        if new["metadata"].get("deletionTimestamp") and \
                not old["metadata"].get("deletionTimestamp"):
            self._pod_event(new, True)
            return
        for pod in (old, new):
            job = self._owner(pod)
            if job is not None:
                self.queue.add(object_key(job))

    def _maybe_orphan(self, pod: dict) -> None:
        """A pod holding the tracking finalizer whose Job is gone (or that has no controller)
        is let go, as kube's syncOrphanPod, so that it does not hang in Terminating."""
        if TRACKING_FINALIZER not in (pod["metadata"].get("finalizers") or []):
            return
        ref = controller_ref(pod)
        if ref is not None and (ref.get("kind") != "Job" or ref.get("apiVersion") != "batch/v1"):
            return
        self.queue.add(ORPHAN_PREFIX + object_key(pod))

    def _sync_orphan(self, pod_key: str) -> None:
        ns, _, name = pod_key.partition("/")
        pod = self.pods.store.get(pod_key)
        if pod is None or TRACKING_FINALIZER not in (pod["metadata"].get("finalizers") or []):
            return
        ref = controller_ref(pod)
        if ref is not None and running_job(self.client, ns, ref):
            return  # adopted, or its job is just not in the cache yet
        self._remove_finalizers({"metadata": {"namespace": ns}}, [pod])

    # sync

    def sync(self, key: str) -> None:
        if key.startswith(ORPHAN_PREFIX):
            self._sync_orphan(key[len(ORPHAN_PREFIX):])
            return
        cached = self.jobs.store.get(key)
        if cached is None:
            self.expectations.forget(key)
            self.backoff.forget(key)
            return
        job = {"apiVersion": "batch/v1", "kind": "Job", **copy.deepcopy(cached)}
        ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
        satisfied = self.expectations.satisfied(key)
        pods = self._claim(job)
        if finished(job):
            self._remove_finalizers(job, [p for p in pods if TRACKING_FINALIZER in
                                          (p["metadata"].get("finalizers") or [])])
            return
        now = self.clock()
        status = copy.deepcopy(job.get("status") or {})
        if not job["spec"].get("suspend") and not status.get("startTime"):
            status["startTime"] = timefmt.rfc3339(now)
        job, fail_job = self._track(job, pods, status, now)
        if job is None:
            return
        status = copy.deepcopy(job.get("status") or {})
        uncounted = status.get("uncountedTerminatedPods") or {}
        succeeded = (status.get("succeeded") or 0) + len(uncounted.get("succeeded") or [])
        failed = (status.get("failed") or 0) + len(uncounted.get("failed") or [])
        active = [p for p in pods if _phase(p) not in ("Succeeded", "Failed") and
                  not p["metadata"].get("deletionTimestamp")]
        terminating = [p for p in pods if is_terminating(p)]
        spec = job["spec"]
        conditions = list(status.get("conditions") or [])
        target = condition(job, "FailureTarget")
        criteria = condition(job, "SuccessCriteriaMet")
        if target is None and criteria is None:
            reason = self._failure_reason(job, failed, active, now)
            if fail_job:
                target = new_condition("FailureTarget", "PodFailurePolicy", fail_job, now)
                conditions.append(target)
                self.recorder.event(job, "Warning", "PodFailurePolicy", fail_job)
            elif reason:
                message = MESSAGES[reason]
                target = new_condition("FailureTarget", reason, message, now)
                conditions.append(target)
                self.recorder.event(job, "Warning", reason, message)
            elif success_policy_match(job):
                criteria = new_condition("SuccessCriteriaMet", "SuccessPolicy",
                                         success_policy_match(job), now)
                conditions.append(criteria)
            elif self._complete(job, succeeded, active):
                criteria = new_condition("SuccessCriteriaMet", "CompletionsReached",
                                         COMPLETE_MESSAGE, now)
                conditions.append(criteria)
            if target is not None or criteria is not None:
                # The decision is written before any pod is deleted for it: a deleted pod
                # changes the counts it was made on.
                written = put_status(self.client, jobs_path(ns, name), job,
                                     {**status, "conditions": conditions})
                if written is None:
                    return
                job = written
        if target is not None or criteria is not None:
            self.control.delete_all(key, job, active)
            active = []
            left = [p for p in self._claim(job) if TRACKING_FINALIZER in
                    (p["metadata"].get("finalizers") or []) or is_terminating(p)]
            if not left and not (uncounted.get("succeeded") or uncounted.get("failed")):
                done = target or criteria
                final = "Failed" if target is not None else "Complete"
                conditions.append(new_condition(final, done["reason"], done["message"], now))
                if final == "Complete":
                    status["completionTime"] = timefmt.rfc3339(now)
                    self.recorder.event(job, "Normal", "Completed", "Job completed")
                terminating = []
        else:
            conditions = self._suspension(job, conditions, status, now)
            if spec.get("suspend"):
                self.control.delete_all(key, job, active)
                active = []
            elif satisfied:
                active = self._manage(key, job, pods, active, succeeded, now)
        status.update({"active": len(active), "ready": sum(1 for p in active if is_ready(p)),
                       "terminating": len(terminating), "conditions": conditions})
        if not conditions:
            del status["conditions"]
        for field in ("active", "succeeded", "failed"):
            if not status.get(field):
                status.pop(field, None)
        status.setdefault("uncountedTerminatedPods", {})
        put_status(self.client, jobs_path(ns, name), job, status)
        deadline = spec.get("activeDeadlineSeconds")
        if deadline and status.get("startTime") and target is None and criteria is None and \
                not spec.get("suspend"):
            left_s = timefmt.parse(status["startTime"]) + deadline - now
            self.queue.add_after(key, max(left_s, 0.0) + 0.1)

    def _suspension(self, job: dict, conditions: list[dict], status: dict,
                    now: float) -> list[dict]:
        """The Suspended condition: True (JobSuspended) while spec.suspend, turned False
        (JobResumed) on resuming, which also restarts the clock of activeDeadlineSeconds."""
        current = next((c for c in conditions if c.get("type") == "Suspended"), None)
        suspended = current is not None and current.get("status") == "True"
        if job["spec"].get("suspend") and not suspended:
            self.recorder.event(job, "Normal", "Suspended", "Job suspended")
            cond = new_condition("Suspended", "JobSuspended", "Job suspended", now)
            return [c for c in conditions if c is not current] + [cond]
        if not job["spec"].get("suspend") and suspended:
            self.recorder.event(job, "Normal", "Resumed", "Job resumed")
            status["startTime"] = timefmt.rfc3339(now)
            cond = {**new_condition("Suspended", "JobResumed", "Job resumed", now),
                    "status": "False"}
            return [cond if c is current else c for c in conditions]
        return conditions

    def _claim(self, job: dict) -> list[dict]:
        ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
        candidates = [p for p in self.pods.store.by_index(NAMESPACE_INDEX, ns)
                      if label_selector.matches(job["spec"].get("selector"),
                                                p["metadata"].get("labels"))
                      or (controller_ref(p) or {}).get("uid") == job["metadata"]["uid"]]
        claimer = Claimer(self.client, job, lambda p: pods_path(ns, p["metadata"]["name"]),
                          jobs_path(ns, name))
        return claimer.claim(candidates)

    def _track(self, job: dict, pods: list[dict], status: dict, now: float
               ) -> tuple[dict | None, str]:
        """Counts finished pods once: their uids into uncountedTerminatedPods (written), the
        finalizers off, then the uids whose pods let go into succeeded/failed; a failure the
        podFailurePolicy ignores is not counted. The job as written (None when it is gone),
        and the message of a FailJob rule a new failure matched."""
        ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
        uncounted = status.setdefault("uncountedTerminatedPods", {})
        known = set(uncounted.get("succeeded") or []) | set(uncounted.get("failed") or [])
        indexed = job["spec"].get("completionMode") == "Indexed"
        completed = parse_indexes(status.get("completedIndexes"))
        completions = job["spec"].get("completions") or 0
        finishing, new_ok, new_failed, fail_job = [], 0, 0, ""
        lost = parse_indexes(status.get("failedIndexes"))
        for pod in pods:
            if TRACKING_FINALIZER not in (pod["metadata"].get("finalizers") or []):
                continue
            uid = pod["metadata"]["uid"]
            if uid in self.released:
                continue  # counted already; the cache has not seen the finalizer go
            ok = _phase(pod) == "Succeeded"
            if not ok and not is_failed(pod, job):
                continue
            finishing.append(pod)
            if uid in known:
                continue
            if ok:
                index = pod_index(pod)
                if indexed and (index is None or index >= completions or index in completed):
                    continue
                if indexed:
                    completed.add(index)
                uncounted.setdefault("succeeded", []).append(uid)
                new_ok += 1
            else:
                action, message = failure_policy.match(job, pod)
                if action == "Ignore":
                    continue
                if action == "FailJob" and not fail_job:
                    fail_job = message
                per_index = job["spec"].get("backoffLimitPerIndex")
                index = pod_index(pod)
                if indexed and per_index is not None and index is not None and \
                        (action == "FailIndex" or index_failures(pod) + 1 > per_index):
                    lost.add(index)
                uncounted.setdefault("failed", []).append(uid)
                new_failed += 1
        self.backoff.record(object_key(job), new_failed, new_ok, now)
        if indexed and completed:
            status["completedIndexes"] = format_indexes(completed)
        if indexed and job["spec"].get("backoffLimitPerIndex") is not None:
            status["failedIndexes"] = format_indexes(lost)
        for side in ("succeeded", "failed"):
            if side in uncounted and not uncounted[side]:
                del uncounted[side]
        written = put_status(self.client, jobs_path(ns, name), job, status)
        if written is None:
            return None, ""
        refused = self._remove_finalizers(written, finishing)
        # Uids whose pod no longer holds the finalizer (or is gone) are counted for good; a pod
        # whose removal was refused stays uncounted, to be released and counted by a later sync.
        holding = {p["metadata"]["uid"] for p in pods
                   if TRACKING_FINALIZER in (p["metadata"].get("finalizers") or [])} - \
            ({p["metadata"]["uid"] for p in finishing} - refused)
        status = copy.deepcopy(written.get("status") or {})
        uncounted = status.get("uncountedTerminatedPods") or {}
        for side in ("succeeded", "failed"):
            uids = uncounted.get(side) or []
            keep = [u for u in uids if u in holding]
            if indexed and side == "succeeded":
                status["succeeded"] = len(parse_indexes(status.get("completedIndexes")))
            else:
                status[side] = (status.get(side) or 0) + len(uids) - len(keep)
            if keep:
                uncounted[side] = keep
            else:
                uncounted.pop(side, None)
            if not status[side]:
                del status[side]
        status["uncountedTerminatedPods"] = uncounted
        return put_status(self.client, jobs_path(ns, name), written, status), fail_job

    def _remove_finalizers(self, job: dict, pods: list[dict]) -> set[str]:
        """The uids of the pods that still hold the finalizer: the server refused its removal
        (409, 422). A pod that is gone holds nothing."""
        ns = job["metadata"]["namespace"]
        refused = set()
        for pod in pods:
            uid = pod["metadata"]["uid"]
            patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER],
                                  "uid": uid}}
            # Marked before the request: its watch event may come back before it returns.
            self.released.add(uid)
            try:
                self.client.patch(pods_path(ns, pod["metadata"]["name"]), patch, "strategic")
            except ApiError as e:
                self.released.discard(uid)
                if e.code in (409, 422):
                    refused.add(uid)
                elif e.code != 404:
                    raise
        return refused

    def _failure_reason(self, job: dict, failed: int, active: list[dict], now: float) -> str:
        spec = job["spec"]
        if spec.get("backoffLimitPerIndex") is not None:
            status = job.get("status") or {}
            lost = parse_indexes(status.get("failedIndexes"))
            if spec.get("maxFailedIndexes") is not None and len(lost) > spec["maxFailedIndexes"]:
                return "MaxFailedIndexesExceeded"
            settled = lost | parse_indexes(status.get("completedIndexes"))
            if lost and len(settled) >= (spec.get("completions") or 0) and not active:
                return "FailedIndexes"
        limit = spec.get("backoffLimit", 6)
        if failed > limit:
            return "BackoffLimitExceeded"
        if (spec.get("template") or {}).get("spec", {}).get("restartPolicy") == "OnFailure":
            total = sum(restarts(p) for p in active)
            if (limit == 0 and total > 0) or (limit and total >= limit):
                return "BackoffLimitExceeded"
        deadline = spec.get("activeDeadlineSeconds")
        start = (job.get("status") or {}).get("startTime")
        if deadline and start and not spec.get("suspend") and timefmt.parse(start) + deadline <= now:
            return "DeadlineExceeded"
        return ""

    def _complete(self, job: dict, succeeded: int, active: list[dict]) -> bool:
        completions = job["spec"].get("completions")
        if completions is None:
            return succeeded > 0 and not active
        if job["spec"].get("completionMode") == "Indexed":
            done = parse_indexes((job.get("status") or {}).get("completedIndexes"))
            return len(done) >= completions
        return succeeded >= completions and not active

    def _manage(self, key: str, job: dict, pods: list[dict], active: list[dict],
                succeeded: int, now: float) -> list[dict]:
        """Creates or deletes pods toward the wanted number; the pods active afterwards."""
        spec = job["spec"]
        parallelism = spec.get("parallelism", 1)
        completions = spec.get("completions")
        indexed = spec.get("completionMode") == "Indexed"
        replace_only_failed = spec.get("podReplacementPolicy") == "Failed"
        terminating = sum(1 for p in pods if is_terminating(p)) if not replace_only_failed else 0
        # The job's status may be older than its pods: the informer can show a pod whose
        # finalizer this controller removed before it shows the status that counted the pod.
        # A succeeded pod is counted whatever the status says, so that such a sync does not
        # start its index (or completion) again, only for the extra pod to be deleted, and
        # counted failed, once the status catches up.
        finished_ok = [p for p in pods if _phase(p) == "Succeeded"]
        if indexed:
            done = parse_indexes((job.get("status") or {}).get("completedIndexes")) | \
                parse_indexes((job.get("status") or {}).get("failedIndexes")) | \
                {i for i in map(pod_index, finished_ok) if i is not None}
            by_index: dict[int, list[dict]] = {}
            extra: list[dict] = []
            for pod in active:
                index = pod_index(pod)
                if index is None or index >= (completions or 0) or index in done:
                    extra.append(pod)
                else:
                    by_index.setdefault(index, []).append(pod)
            for group in by_index.values():
                extra += sorted(group, key=lambda p: p["metadata"].get("creationTimestamp",
                                                                        ""))[1:]
            if extra:
                self.control.delete_all(key, job, extra)
            active = [p for p in active if p not in extra]
            busy = set(by_index) | {pod_index(p) for p in pods if is_terminating(p)}
            wanted = [i for i in range(completions or 0) if i not in done and i not in busy]
            room = parallelism - len(active) - (terminating if not replace_only_failed else 0)
            to_create = wanted[:max(room, 0)]
        else:
            succeeded = max(succeeded, len(finished_ok))
            if completions is None:
                want = len(active) if succeeded > 0 else parallelism
            else:
                want = min(parallelism, max(completions - succeeded, 0))
            diff = len(active) - want
            if diff > 0:
                victims = sorted(active, key=lambda p: (is_ready(p), _phase(p) == "Running",
                                                       p["metadata"].get("creationTimestamp",
                                                                          "")))
                victims = sorted(victims[:diff], key=lambda p: p["metadata"]["name"])
                self.control.delete_all(key, job, victims)
                return [p for p in active if p not in victims]
            to_create = [None] * max(-diff - terminating, 0)
        if not to_create:
            return active
        wait = self.backoff.remaining(key, now)
        if wait > 0:
            self.queue.add_after(key, wait)
            return active
        self.expectations.expect_creations(key, len(to_create))
        created = list(active)
        failures: dict[int, int] = {}
        for pod in pods:
            index = pod_index(pod)
            if index is not None and _phase(pod) == "Failed":
                failures[index] = max(failures.get(index, 0), index_failures(pod) + 1)
        for index in to_create:
            created.append(self.control.create(key, job, pod_from_template(
                job, index, failures.get(index, 0) if index is not None else 0)))
        return created


def start(ctx: ControllerContext) -> None:
    JobController(ctx).start()
