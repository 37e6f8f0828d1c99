"""The minimal scheduler loop: binds pending pods (no spec.nodeName, schedulerName
default-scheduler) to a Ready node that fits - resource requests against allocatable,
nodeSelector, taints and tolerations - and records FailedScheduling otherwise, as kube-scheduler
does (event + PodScheduled=False condition). Runs as a thread inside the server."""
from __future__ import annotations

import threading
import time
from collections import Counter
from fractions import Fraction

from kubeapi import timefmt
from kubeapi.quantity import parse_quantity
from kubeapi.status import ApiError

from .api import bind_pod
from .registry.store import Store
from .watch import WatchHub

SCHEDULER_NAME = "default-scheduler"
# Unschedulable pods are retried when a node changes, and at least this often.
RETRY_SECONDS = 30.0
_TERMINAL = ("Succeeded", "Failed")


def _wants_scheduling(pod: dict) -> bool:
    spec = pod.get("spec") or {}
    return not spec.get("nodeName") and \
        spec.get("schedulerName", SCHEDULER_NAME) == SCHEDULER_NAME and \
        not pod["metadata"].get("deletionTimestamp") and \
        (pod.get("status") or {}).get("phase", "Pending") == "Pending"


def pod_requests(pod: dict) -> dict[str, Fraction]:
    """The larger of the sum over containers and the largest init container, per resource."""
    spec = pod.get("spec") or {}
    total: dict[str, Fraction] = {}
    for c in spec.get("containers") or []:
        for name, value in (((c.get("resources") or {}).get("requests")) or {}).items():
            total[name] = total.get(name, Fraction(0)) + parse_quantity(value)
    for c in spec.get("initContainers") or []:
        for name, value in (((c.get("resources") or {}).get("requests")) or {}).items():
            total[name] = max(total.get(name, Fraction(0)), parse_quantity(value))
    return total


def _tolerates(tolerations: list[dict], taint: dict) -> bool:
    for t in tolerations:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        if t.get("operator", "Equal") == "Exists":
            if not t.get("key") or t["key"] == taint.get("key"):
                return True
        elif t.get("key") == taint.get("key") and t.get("value", "") == taint.get("value", ""):
            return True
    return False


def node_ready(node: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or [])


def unfit_reasons(pod: dict, node: dict, used: dict[str, Fraction], count: int) -> list[str]:
    """Why pod cannot go to node (empty when it fits), in kube-scheduler's words."""
    spec = pod.get("spec") or {}
    if not node_ready(node):
        return ["node(s) were not ready"]
    if (node.get("spec") or {}).get("unschedulable"):
        return ["node(s) were unschedulable"]
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return ["node(s) didn't match Pod's node affinity/selector"]
    tolerations = spec.get("tolerations") or []
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and \
                not _tolerates(tolerations, taint):
            return [f"node(s) had untolerated taint {{{taint.get('key')}: "
                    f"{taint.get('value', '')}}}"]
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    reasons = []
    if "pods" in allocatable and count + 1 > parse_quantity(allocatable["pods"]):
        reasons.append("Too many pods")
    for name, want in pod_requests(pod).items():
        if want == 0:
            continue
        have = parse_quantity(allocatable[name]) if name in allocatable else Fraction(0)
        if used.get(name, Fraction(0)) + want > have:
            reasons.append(f"Insufficient {name}")
    return reasons


class Scheduler:
    def __init__(self, pods: Store, nodes: Store, events: Store, hub: WatchHub):
        self._pods, self._nodes, self._events = pods, nodes, events
        self._hub = hub
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # pod uid -> (message, event name, time recorded): one event per distinct failure.
        self._failures: dict[str, tuple[str, str, float]] = {}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        pod_watch = self._hub.open(self._pods.rtype.key_prefix())
        node_watch = self._hub.open(self._nodes.rtype.key_prefix())
        try:
            last_full, pending = 0.0, False
            while not self._stop.is_set():
                node_changed = self._drain(node_watch, lambda ev: True)
                freed = False
                for ev in self._drain_pods(pod_watch):
                    if _wants_scheduling(ev.obj) and ev.type != "DELETED":
                        pending = True
                    elif (ev.obj.get("spec") or {}).get("nodeName") and (
                            ev.type == "DELETED" or
                            (ev.obj.get("status") or {}).get("phase") in _TERMINAL):
                        freed = True
                retry = time.monotonic() - last_full >= RETRY_SECONDS
                if pending or node_changed or freed or retry:
                    full = node_changed or freed or retry
                    self.schedule_pending(retry_unschedulable=full)
                    pending = False
                    if full:
                        last_full = time.monotonic()
                ev = pod_watch.next(0.2)
                if ev is not None and _wants_scheduling(ev.obj) and ev.type != "DELETED":
                    pending = True
        finally:
            pod_watch.close()
            node_watch.close()

    @staticmethod
    def _drain(watcher, relevant) -> bool:
        changed = False
        while (ev := watcher.next(0)) is not None:
            changed = changed or relevant(ev)
        return changed

    @staticmethod
    def _drain_pods(watcher):
        while (ev := watcher.next(0)) is not None:
            yield ev

    def schedule_pending(self, retry_unschedulable: bool = True) -> None:
        pods = self._pods.list("").items
        pending = [p for p in pods if _wants_scheduling(p)]
        if not pending:
            return
        pending.sort(key=lambda p: (-int((p.get("spec") or {}).get("priority") or 0),
                                    p["metadata"].get("creationTimestamp", "")))
        nodes = self._nodes.list("").items
        used: dict[str, dict[str, Fraction]] = {}
        counts: Counter[str] = Counter()
        for p in pods:
            node = (p.get("spec") or {}).get("nodeName")
            if node and (p.get("status") or {}).get("phase") not in _TERMINAL:
                counts[node] += 1
                acc = used.setdefault(node, {})
                for name, q in pod_requests(p).items():
                    acc[name] = acc.get(name, Fraction(0)) + q
        for pod in pending:
            uid = pod["metadata"].get("uid", "")
            if uid in self._failures and not retry_unschedulable:
                continue
            try:
                self._schedule_one(pod, nodes, used, counts)
            except (ApiError, ValueError):
                continue  # the pod changed or went away meanwhile; the next round sees it

    def _schedule_one(self, pod: dict, nodes: list[dict], used: dict[str, dict[str, Fraction]],
                      counts: Counter[str]) -> None:
        meta = pod["metadata"]
        reasons: Counter[str] = Counter()
        best, best_score = None, None
        for node in nodes:
            name = node["metadata"]["name"]
            why = unfit_reasons(pod, node, used.get(name, {}), counts[name])
            if why:
                reasons.update(why)
                continue
            score = self._load(node, used.get(name, {}), counts[name])
            if best_score is None or score < best_score:
                best, best_score = name, score
        if best is None:
            detail = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items(),
                                                              key=lambda x: x[0]))
            message = f"0/{len(nodes)} nodes are available: " + (
                f"{detail}." if detail else "no nodes available to schedule pods.")
            self._unschedulable(pod, message)
            return
        bind_pod(self._pods, meta["namespace"], meta["name"], best)
        counts[best] += 1
        acc = used.setdefault(best, {})
        for name, q in pod_requests(pod).items():
            acc[name] = acc.get(name, Fraction(0)) + q
        self._failures.pop(meta.get("uid", ""), None)
        self._record(pod, "Normal", "Scheduled",
                     f"Successfully assigned {meta['namespace']}/{meta['name']} to {best}")

    @staticmethod
    def _load(node: dict, used: dict[str, Fraction], count: int) -> Fraction:
        """Least-allocated scoring: the busiest of cpu and memory, as a fraction."""
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        load = Fraction(count, 1000)
        for name in ("cpu", "memory"):
            if name in allocatable and parse_quantity(allocatable[name]) > 0:
                load = max(load, used.get(name, Fraction(0)) / parse_quantity(allocatable[name]))
        return load

    def _unschedulable(self, pod: dict, message: str) -> None:
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
