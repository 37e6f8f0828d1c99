"""What the scheduler tells about a pod: the Scheduled and FailedScheduling events, one per
distinct failure (bumped while it repeats), and the PodScheduled=False condition."""
from __future__ import annotations

import time

from kubeapi import timefmt
from kubeapi.status import ApiError

from ..registry.store import Store

SCHEDULER_NAME = "default-scheduler"
# Unschedulable pods are retried on events that could make them fit, and after this long
# whatever the events; a failure that repeats bumps its event's count at most this often.
RETRY_SECONDS = 30.0


class Recorder:
    def __init__(self, pods: Store, events: Store) -> None:
        self._pods, self._events = pods, events
        # pod uid -> (message, event name, time recorded): one event per distinct failure.
        self._failures: dict[str, tuple[str, str, float]] = {}

    def scheduled(self, pod: dict, node: str) -> None:
        meta = pod["metadata"]
        self._failures.pop(meta.get("uid", ""), None)
        self._record(pod, "Normal", "Scheduled",
                     f"Successfully assigned {meta['namespace']}/{meta['name']} to {node}")

    def unschedulable(self, pod: dict, message: str) -> None:
        meta = pod["metadata"]
        uid = meta.get("uid", "")

        def mark(obj: dict) -> dict:
            status = obj.setdefault("status", {})
            old = [c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"]
            if old and old[0].get("message") == message:
                return obj
            status["conditions"] = [c for c in status.get("conditions") or []
                                    if c.get("type") != "PodScheduled"] + [{
                                        "type": "PodScheduled", "status": "False",
                                        "reason": "Unschedulable", "message": message,
                                        "lastProbeTime": None,
                                        "lastTransitionTime": timefmt.rfc3339()}]
            return obj
        self._pods.guaranteed_update(meta["namespace"], meta["name"], mark, subresource="status")
        previous = self._failures.get(uid)
        if previous and previous[0] == message:
            if time.monotonic() - previous[2] >= RETRY_SECONDS:
                self._bump(meta["namespace"], previous[1])
                self._failures[uid] = (message, previous[1], time.monotonic())
            return
        name = self._record(pod, "Warning", "FailedScheduling", message)
        self._failures[uid] = (message, name, time.monotonic())

    def _bump(self, namespace: str, event_name: str) -> None:
        def bump(ev: dict) -> dict:
            ev["count"] = int(ev.get("count") or 1) + 1
            ev["lastTimestamp"] = timefmt.rfc3339()
            return ev
        try:
            self._events.guaranteed_update(namespace, event_name, bump)
        except ApiError:
            pass  # the event was deleted; the next distinct failure records a new one

    def _record(self, pod: dict, kind: str, reason: str, message: str) -> str:
        meta = pod["metadata"]
        now = timefmt.rfc3339()
        name = f"{meta['name']}.{time.time_ns():x}"
        self._events.create(meta["namespace"], {
            "metadata": {"name": name, "namespace": meta["namespace"]},
            "involvedObject": {"kind": "Pod", "namespace": meta["namespace"],
                               "name": meta["name"], "uid": meta.get("uid", ""),
                               "apiVersion": "v1",
                               "resourceVersion": meta.get("resourceVersion", "")},
            "reason": reason, "message": message, "type": kind,
            "source": {"component": SCHEDULER_NAME}, "reportingComponent": SCHEDULER_NAME,
            "reportingInstance": SCHEDULER_NAME, "firstTimestamp": now, "lastTimestamp": now,
            "count": 1})
        return name
