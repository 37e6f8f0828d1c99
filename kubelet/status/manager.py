"""Writes pod statuses to the API server (pods/status, a JSON merge patch) whenever they
change: the newest status per pod wins (older ones not yet sent are never sent), writes that
fail are retried with back-off until the API server answers, and a terminated pod that is
being deleted is deleted for good (grace period 0) once its final status is written. A static
pod's status goes to its mirror pod (sources/mirror.py), once one exists."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from kubeapi.restclient import ApiClient, Unavailable
from kubeapi.status import ApiError
from kubelet.pods import Pod

log = logging.getLogger("kubelet.status")

OWNED = ("phase", "conditions", "message", "reason", "hostIP", "hostIPs", "podIP", "podIPs",
         "startTime", "qosClass", "initContainerStatuses", "containerStatuses",
         "ephemeralContainerStatuses")
RETRY_FIRST, RETRY_MAX = 0.5, 5.0
# A pod's first status while its containers are still being made (Pending, set as its first
# sync begins) waits for the next one, which the end of that sync sets, or this long at most: a
# pod that starts gets one PATCH, carrying Running, instead of two (half the status writes of a
# burst of pod starts, on the API server and in every watcher; 100 pods at once on 2 cores take
# 3-9 s). A sync that takes longer (an image pull) shows ContainerCreating after it.
FIRST_PENDING_HOLD = 5.0


class _Entry:
    __slots__ = ("namespace", "name", "uid", "static", "status", "written", "delete", "deleted",
                 "retry_at", "delay", "hold_until")

    def __init__(self, pod: Pod) -> None:
        self.namespace, self.name, self.uid = pod.namespace, pod.name, pod.uid
        self.static = pod.is_static
        self.status: dict | None = None
        # What the API server has: its copy when we first saw the pod, then what we wrote.
        self.written: dict | None = pod.status or None
        self.delete = False
        self.deleted = False
        self.retry_at = 0.0
        self.delay = RETRY_FIRST
        self.hold_until: float | None = None   # set at the first status, 0 once released


class StatusManager:
    def __init__(self, client: ApiClient | None, writers: int = 4) -> None:
        self.client = client
        # (namespace, name, static pod uid) -> the uid of its mirror pod, None while there is none
        self.mirror_uid: Callable[[str, str, str], str | None] = lambda *_: None
        self._entries: dict[str, _Entry] = {}
        self._queue: list[str] = []
        self._busy: set[str] = set()
        self._cond = threading.Condition()
        self._stopped = False
        self._threads = [threading.Thread(target=self._run, name=f"status-writer-{i}",
                                          daemon=True) for i in range(writers if client else 0)]
        for t in self._threads:
            t.start()

    def get(self, uid: str) -> dict | None:
        """The newest status set for the pod (what the next generation builds on)."""
        with self._cond:
            entry = self._entries.get(uid)
            return entry.status if entry else None

    def set(self, pod: Pod, status: dict) -> None:
        with self._cond:
            entry = self._entries.get(pod.uid)
            if entry is None:
                entry = self._entries[pod.uid] = _Entry(pod)
            entry.status = status
            if entry.hold_until is None:
                entry.hold_until = time.monotonic() + FIRST_PENDING_HOLD \
                    if _creating(status) else 0.0
            elif entry.hold_until:
                entry.hold_until = 0.0      # the sync ended: whatever it found is news
                self._cond.notify()
            if status != entry.written:
                self._enqueue(entry)

    def delete_when_written(self, pod: Pod) -> None:
        """The pod is terminated and its deletion was asked: finish it after the last status."""
        with self._cond:
            entry = self._entries.get(pod.uid)
            if entry is None:
                entry = self._entries[pod.uid] = _Entry(pod)
            if not entry.delete:
                entry.delete = True
                self._enqueue(entry)

    def resend(self, uid: str) -> None:
        """The API server lost what was written (a new mirror pod): write the status again."""
        with self._cond:
            entry = self._entries.get(uid)
            if entry is not None:
                entry.written = None
                if entry.status is not None:
                    self._enqueue(entry)

    def forget(self, uid: str) -> None:
        with self._cond:
            self._entries.pop(uid, None)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def _enqueue(self, entry: _Entry) -> None:
        if entry.uid not in self._queue:
            self._queue.append(entry.uid)
            self._cond.notify()

    # -- the writers --------------------------------------------------------------------------

    def _take(self) -> _Entry | None:
        with self._cond:
            while not self._stopped:
                now = time.monotonic()
                soonest = None
                for uid in self._queue:
                    entry = self._entries.get(uid)
                    if entry is None:
                        self._queue.remove(uid)
                        break
                    if uid in self._busy:
                        continue
                    # a deletion to finish is held no longer
                    due = max(entry.retry_at, 0.0 if entry.delete else entry.hold_until or 0.0)
                    if due <= now:
                        self._queue.remove(uid)
                        self._busy.add(uid)
                        return entry
                    soonest = due if soonest is None else min(soonest, due)
                else:
                    self._cond.wait(None if soonest is None else soonest - now)
            return None

    def _run(self) -> None:
        while (entry := self._take()) is not None:
            try:
                done = self._write(entry)
            except Unavailable as e:
                log.info("status of %s/%s not written, will retry: %s", entry.namespace,
                         entry.name, e)
                done = False
            except ApiError as e:
                if e.code == 404:
                    done = True     # the pod is gone: nothing left to write
                elif e.code in (409, 422, 400, 403):
                    log.warning("status of %s/%s refused: %s", entry.namespace, entry.name, e)
                    done = True
                else:
                    done = False
            except Exception:  # noqa: BLE001 - the writer lives on; the entry is retried
                log.exception("writing the status of %s/%s failed", entry.namespace, entry.name)
                done = False
            with self._cond:
                self._busy.discard(entry.uid)
                if done:
                    entry.delay = RETRY_FIRST
                    if entry.deleted:
                        self._entries.pop(entry.uid, None)
                else:
                    entry.retry_at = time.monotonic() + entry.delay
                    entry.delay = min(entry.delay * 2, RETRY_MAX)
                    self._enqueue(entry)

    def _write(self, entry: _Entry) -> bool:
        """True once everything asked of this pod is written."""
        path = f"/api/v1/namespaces/{entry.namespace}/pods/{entry.name}"
        api_uid = entry.uid
        if entry.static:
            api_uid = self.mirror_uid(entry.namespace, entry.name, entry.uid)
            if api_uid is None:
                return False        # no mirror pod yet: retried
        while True:
            with self._cond:
                status = entry.status
                if status is None or status == entry.written:
                    break
            body = {k: status.get(k) for k in OWNED}
            self.client.patch(path + "/status",
                              {"metadata": {"uid": api_uid}, "status": body})
            with self._cond:
                entry.written = status
        if entry.delete:
            try:
                self.client.delete(path, {"gracePeriodSeconds": 0,
                                          "preconditions": {"uid": entry.uid}})
            except ApiError as e:
                if e.code not in (404, 409):
                    raise
            entry.deleted = True
        return True


def _creating(status: dict) -> bool:
    """Pending with no container started yet: the status of a pod whose sync is under way."""
    if status.get("phase") != "Pending":
        return False
    return not any("waiting" not in (c.get("state") or {"waiting": {}})
                   for key in ("initContainerStatuses", "containerStatuses")
                   for c in status.get(key) or ())
