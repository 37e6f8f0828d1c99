"""The CronJob controller, as kube's pkg/controller/cronjob (v2): at each time of spec.schedule
(in spec.timeZone, else the manager's local zone) it creates the Job `<cronjob>-<scheduled time
in unix minutes>` from spec.jobTemplate, unless the time was missed by more than
startingDeadlineSeconds, the CronJob is suspended, or concurrencyPolicy Forbid finds a job still
running (Replace deletes it first). status.active lists its running jobs, lastScheduleTime and
lastSuccessfulTime are kept, finished jobs beyond successful/failedJobsHistoryLimit are deleted.
The clock is injectable (`clock`), and pycontroller-manager's --cronjob-clock-offset shifts it,
so that tests need not wait for the minute."""
from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kubeapi import cron, timefmt
from kubeapi.informer import NAMESPACE_INDEX, object_key, object_of, resource_path
from kubeapi.status import ApiError
from kubeapi.workqueue import RateLimitingQueue

from ..context import ControllerContext
from ..events import EventRecorder
from ..fresh_read import fresh_read
from ..workers import start_workers
from .controller_ref import owner_reference
from .job import finished, jobs_path, running_job
from .pod_util import controller_ref
from .workload_status import put_status

log = logging.getLogger("cronjob-controller")

SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
TOO_MANY_MISSED = 100
WORKERS = 2


def cronjobs_path(ns: str, name: str = "") -> str:
    base = f"/apis/batch/v1/namespaces/{ns}/cronjobs"
    return f"{base}/{name}" if name else base


def zone_of(cj: dict) -> tzinfo:
    name = cj["spec"].get("timeZone")
    if not name:
        return datetime.now().astimezone().tzinfo or timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name}") from None


def job_name(cj: dict, scheduled: datetime) -> str:
    """kube's getJobName: the scheduled time in minutes since the epoch."""
    return f"{cj['metadata']['name']}-{int(scheduled.timestamp()) // 60}"


def most_recent_schedule(cj: dict, schedule: cron.Schedule, now: datetime
                         ) -> tuple[datetime | None, int]:
    """The latest schedule time not after now since the last run (or creation, or the
    starting deadline), and how many were missed before it."""
    status = cj.get("status") or {}
    stamp = status.get("lastScheduleTime") or cj["metadata"]["creationTimestamp"]
    earliest = datetime.fromtimestamp(timefmt.parse(stamp), tz=now.tzinfo)
    deadline = cj["spec"].get("startingDeadlineSeconds")
    if deadline is not None:
        limit = datetime.fromtimestamp(now.timestamp() - deadline, tz=now.tzinfo)
        earliest = max(earliest, limit)
    latest, missed, t = None, 0, schedule.next_after(earliest)
    while t <= now:
        if latest is not None:
            missed += 1
        latest = t
        if missed > TOO_MANY_MISSED * 10:
            break
        t = schedule.next_after(t)
    return latest, missed


def rfc3339_in_zone(t: datetime) -> str:
    """Go's time.RFC3339 of a zoned time: Z for UTC, else the offset."""
    text = t.replace(microsecond=0).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def job_from_template(cj: dict, scheduled: datetime) -> dict:
    template = copy.deepcopy(cj["spec"].get("jobTemplate") or {})
    tmeta = template.get("metadata") or {}
    annotations = dict(tmeta.get("annotations") or {})
    annotations[SCHEDULED_TIMESTAMP] = rfc3339_in_zone(scheduled)
    meta: dict = {"name": job_name(cj, scheduled), "annotations": annotations,
                  "ownerReferences": [owner_reference(cj)]}
    if tmeta.get("labels"):
        meta["labels"] = tmeta["labels"]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
            "spec": template.get("spec") or {}}


def _job_ref(job: dict) -> dict:
    meta = job["metadata"]
    return {"kind": "Job", "namespace": meta["namespace"], "name": meta["name"],
            "uid": meta["uid"], "apiVersion": "batch/v1",
            "resourceVersion": meta.get("resourceVersion", "")}


class CronJobController:
    def __init__(self, ctx: ControllerContext, clock: Callable[[], float] | None = None) -> None:
        offset = float(ctx.options.extra.get("cronjob_clock_offset", 0.0))
        self.ctx = ctx
        self.client = ctx.client
        self.clock = clock or (lambda: time.time() + offset)
        self.cronjobs = ctx.informers.informer(resource_path("batch", "v1", "cronjobs"))
        self.jobs = ctx.informers.informer(resource_path("batch", "v1", "jobs"))
        self.queue = RateLimitingQueue(name="cronjob")
        self.recorder = EventRecorder(ctx.client, "cronjob-controller")
        self.cronjobs.add_event_handler(on_add=self._enqueue,
                                        on_update=lambda old, new: self._enqueue(new),
                                        on_delete=lambda item: self._enqueue(object_of(item)))
        self.jobs.add_event_handler(on_add=self._job_event,
                                    on_update=lambda old, new: self._job_event(new),
                                    on_delete=lambda item: self._job_event(object_of(item)))

    def start(self) -> None:
        start_workers(self.ctx, "cronjob", self.queue, self.sync, [self.cronjobs, self.jobs],
                      WORKERS, log)

    def _enqueue(self, cj: dict) -> None:
        self.queue.add(object_key(cj))

    def _job_event(self, job: dict) -> None:
        ref = controller_ref(job)
        if ref and ref.get("kind") == "CronJob":
            self.queue.add(f"{job['metadata']['namespace']}/{ref.get('name')}")

    def sync(self, key: str) -> None:
        cached = self.cronjobs.store.get(key)
        if cached is None:
            return
        cj = {"apiVersion": "batch/v1", "kind": "CronJob", **copy.deepcopy(cached)}
        ns, name = cj["metadata"]["namespace"], cj["metadata"]["name"]
        jobs = [j for j in self.jobs.store.by_index(NAMESPACE_INDEX, ns)
                if (controller_ref(j) or {}).get("uid") == cj["metadata"]["uid"]]
        status = copy.deepcopy(cj.get("status") or {})
        self._track_active(cj, jobs, status)
        requeue = None
        if not cj["metadata"].get("deletionTimestamp"):
            requeue = self._schedule(cj, jobs, status)
            self._cleanup(cj, jobs)
        for field in ("active",):
            if not status.get(field):
                status.pop(field, None)
        put_status(self.client, cronjobs_path(ns, name), cj, status)
        if requeue is not None:
            self.queue.add_after(key, max(requeue, 0.0) + 0.1)

    def _track_active(self, cj: dict, jobs: list[dict], status: dict) -> None:
        by_uid = {j["metadata"]["uid"]: j for j in jobs}
        active = []
        for ref in status.get("active") or []:
            job = by_uid.get(ref.get("uid"))
            if job is None:
                if running_job(self.client, cj["metadata"]["namespace"], ref):
                    active.append(ref)
                continue
            if not finished(job):
                active.append(ref)
        seen = {r.get("uid") for r in active}
        for job in jobs:
            done = finished(job)
            if done is None and job["metadata"]["uid"] not in seen and \
                    not job["metadata"].get("deletionTimestamp"):
                active.append(_job_ref(job))
            if done is not None:
                if job["metadata"]["uid"] in {r.get("uid") for r in status.get("active") or []}:
                    self.recorder.event(cj, "Normal", "SawCompletedJob",
                                        f"Saw completed job: {job['metadata']['name']}, "
                                        f"condition: {done['type']}")
                completion = (job.get("status") or {}).get("completionTime")
                if done["type"] == "Complete" and completion and (
                        not status.get("lastSuccessfulTime") or
                        timefmt.parse(completion) > timefmt.parse(status["lastSuccessfulTime"])):
                    status["lastSuccessfulTime"] = completion
        status["active"] = active

    def _schedule(self, cj: dict, jobs: list[dict], status: dict) -> float | None:
        """Creates the job due now, if any; seconds until the next schedule time."""
        spec = cj["spec"]
        try:
            zone = zone_of(cj)
            schedule = cron.parse(spec.get("schedule", ""))
        except (ValueError, cron.CronError) as e:
            self.recorder.event(cj, "Warning", "UnparseableSchedule",
                                f"unparseable schedule: {spec.get('schedule')!r} : {e}")
            return None
        now_ts = self.clock()
        now = datetime.fromtimestamp(now_ts, tz=zone)
        until_next = schedule.next_after(now).timestamp() - now_ts
        if spec.get("suspend"):
            return None
        scheduled, missed = most_recent_schedule(cj, schedule, now)
        if scheduled is None:
            return until_next
        if missed > TOO_MANY_MISSED:
            self.recorder.event(cj, "Warning", "TooManyMissedTimes",
                                f"too many missed start times: {missed}. Set or decrease "
                                ".spec.startingDeadlineSeconds or check clock skew")
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None and scheduled.timestamp() + deadline < now_ts:
            self.recorder.event(cj, "Warning", "MissSchedule",
                                f"Missed scheduled time to start a job: "
                                f"{rfc3339_in_zone(scheduled)}")
            return until_next
        name = job_name(cj, scheduled)
        if any(j["metadata"]["name"] == name for j in jobs) or \
                any(r.get("name") == name for r in status.get("active") or []):
            # already made; a lost status write must not lose its schedule time
            status["lastScheduleTime"] = timefmt.rfc3339(scheduled.timestamp())
            return until_next
        policy = spec.get("concurrencyPolicy", "Allow")
        if policy == "Forbid" and status.get("active"):
            self.recorder.event(cj, "Normal", "JobAlreadyActive",
                                "Not starting job because prior execution is running and "
                                "concurrency policy is Forbid")
            return until_next
        if policy == "Replace":
            for ref in status.get("active") or []:
                try:
                    self.client.delete(jobs_path(cj["metadata"]["namespace"], ref["name"]),
                                       {"propagationPolicy": "Background"})
                except ApiError as e:
                    if e.code != 404:
                        raise
                self.recorder.event(cj, "Normal", "SuccessfulDelete",
                                    f"Deleted job {ref['name']}")
            status["active"] = []
        try:
            job = self.client.create(jobs_path(cj["metadata"]["namespace"]),
                                     job_from_template(cj, scheduled))
        except ApiError as e:
            if e.code != 409:
                self.recorder.event(cj, "Warning", "FailedCreate",
                                    f"Error creating job: {e.message}")
                raise
            # Ours from a sync whose status write was lost: record it as that sync would have.
            job = fresh_read(self.client, jobs_path(cj["metadata"]["namespace"],
                                                    job_name(cj, scheduled)))
            if job is None or (controller_ref(job) or {}).get("uid") != cj["metadata"]["uid"]:
                return until_next
            if not finished(job) and job["metadata"]["uid"] not in \
                    {r.get("uid") for r in status.get("active") or []}:
                status.setdefault("active", []).append(_job_ref(job))
            status["lastScheduleTime"] = timefmt.rfc3339(scheduled.timestamp())
            return until_next
        self.recorder.event(cj, "Normal", "SuccessfulCreate",
                            f"Created job {job['metadata']['name']}")
        status.setdefault("active", []).append(_job_ref(job))
        status["lastScheduleTime"] = timefmt.rfc3339(scheduled.timestamp())
        return until_next

    def _cleanup(self, cj: dict, jobs: list[dict]) -> None:
        """Deletes the oldest finished jobs beyond the history limits."""
        spec = cj["spec"]
        for kind, limit in (("Complete", spec.get("successfulJobsHistoryLimit")),
                            ("Failed", spec.get("failedJobsHistoryLimit"))):
            if limit is None:
                continue
            done = sorted((j for j in jobs if (finished(j) or {}).get("type") == kind and
                           not j["metadata"].get("deletionTimestamp")),
                          key=lambda j: ((j.get("status") or {}).get("startTime") or
                                         j["metadata"].get("creationTimestamp", "")))
            for job in done[:max(len(done) - limit, 0)]:
                try:
                    self.client.delete(jobs_path(cj["metadata"]["namespace"],
                                                 job["metadata"]["name"]),
                                       {"propagationPolicy": "Background"})
                except ApiError as e:
                    if e.code != 404:
                        raise
                    continue
                self.recorder.event(cj, "Normal", "SuccessfulDelete",
                                    f"Deleted job {job['metadata']['name']}")


def start(ctx: ControllerContext) -> None:
    CronJobController(ctx).start()
