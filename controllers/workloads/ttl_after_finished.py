"""The TTL-after-finished controller, as kube's pkg/controller/ttlafterfinished: a Job with
spec.ttlSecondsAfterFinished is deleted (propagationPolicy Foreground, so its pods go first)
that many seconds after its Complete or Failed condition, checked again against a fresh read
before deleting so that a TTL changed meanwhile is honoured."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

from kubeapi import timefmt
from kubeapi.informer import object_key, resource_path
from kubeapi.status import ApiError
from kubeapi.workqueue import RateLimitingQueue

from ..context import ControllerContext
from ..fresh_read import fresh_read
from ..workers import start_workers
from .job import finished, jobs_path

log = logging.getLogger("ttl-after-finished-controller")


def expires_in(job: dict, now: float) -> float | None:
    """Seconds until the job may be deleted (<= 0: now); None when it has no TTL or runs."""
    ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    done = finished(job)
    if ttl is None or done is None or job["metadata"].get("deletionTimestamp"):
        return None
    since = done.get("lastTransitionTime")
    at = timefmt.parse(since) if since else now
    return at + ttl - now


class TTLAfterFinishedController:
    def __init__(self, ctx: ControllerContext, clock: Callable[[], float] = time.time) -> None:
        self.ctx = ctx
        self.clock = clock
        self.jobs = ctx.informers.informer(resource_path("batch", "v1", "jobs"))
        self.queue = RateLimitingQueue(name="ttl-after-finished")
        self.jobs.add_event_handler(on_add=self._enqueue,
                                    on_update=lambda old, new: self._enqueue(new))

    def _enqueue(self, job: dict) -> None:
        if expires_in(job, self.clock()) is not None:
            self.queue.add(object_key(job))

    def start(self) -> None:
        start_workers(self.ctx, "ttl-after-finished", self.queue, self.sync, [self.jobs], 2,
                      log)

    def sync(self, key: str) -> None:
        job = self.jobs.store.get(key)
        if job is None or expires_in(job, self.clock()) is None:
            return
        ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
        fresh = fresh_read(self.ctx.client, jobs_path(ns, name))
        if fresh is None:
            return
        left = expires_in(fresh, self.clock())
        if left is None:
            return
        if left > 0:
            self.queue.add_after(key, left)
            return
        log.info("deleting job %s: its TTL after finishing expired", key)
        try:
            self.ctx.client.delete(jobs_path(ns, name), {
                "propagationPolicy": "Foreground",
                "preconditions": {"uid": fresh["metadata"]["uid"],
                                  "resourceVersion": fresh["metadata"]["resourceVersion"]}})
        except ApiError as e:
            if e.code not in (404, 409):
                raise


def start(ctx: ControllerContext) -> None:
    TTLAfterFinishedController(ctx).start()
