"""The scheduler loop: binds pending pods (no spec.nodeName, schedulerName default-scheduler)
to the least loaded Ready node that fits (scheduler.fit), and records why not otherwise
(scheduler.recorder). Runs as a thread inside the API server, on its watch hub and stores,
while this server holds kube-scheduler's Lease (scheduler.election): of several servers on one
storage, one schedules."""
from __future__ import annotations

import threading
import time
from collections import Counter
from fractions import Fraction

from kubeapi.leaderelection import LeaderElector
from kubeapi.status import ApiError

from .. import resources
from ..registry.binding import bind_pod
from ..registry.store import Store
from ..watch import WatchHub
from .election import StoreLeaseClient, lease_config
from .fit import load, pod_requests, unfit_reasons
from .recorder import RETRY_SECONDS, SCHEDULER_NAME, Recorder

_TERMINAL = ("Succeeded", "Failed")


def _wants_scheduling(pod: dict) -> bool:
    spec = pod.get("spec") or {}
    return not spec.get("nodeName") and \
        spec.get("schedulerName", SCHEDULER_NAME) == SCHEDULER_NAME and \
        not pod["metadata"].get("deletionTimestamp") and \
        (pod.get("status") or {}).get("phase", "Pending") == "Pending"


class Scheduler:
    def __init__(self, pods: Store, nodes: Store, events: Store, hub: WatchHub):
        self._pods, self._nodes = pods, nodes
        self._hub = hub
        self._recorder = Recorder(pods, events)
        leases = Store(pods.storage, resources.find("coordination.k8s.io", "v1", "leases"))
        self._elector = LeaderElector(StoreLeaseClient(leases), lease_config())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._elect, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=15)

    def _elect(self) -> None:
        """Schedules while the Lease is ours; stands for it again after losing it."""
        while not self._stop.is_set():
            self._elector.run(self._run, lambda: None, self._stop)

    def _run(self, ended: threading.Event) -> None:
        pod_watch = self._hub.open(self._pods.rtype.key_prefix())
        node_watch = self._hub.open(self._nodes.rtype.key_prefix())
        try:
            last_full, pending = 0.0, False
            while not self._stop.is_set() and not ended.is_set():
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
            if self._recorder.failed_before(uid) and not retry_unschedulable:
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
            score = load(node, used.get(name, {}), counts[name])
            if best_score is None or score < best_score:
                best, best_score = name, score
        if best is None:
            detail = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items(),
                                                              key=lambda x: x[0]))
            message = f"0/{len(nodes)} nodes are available: " + (
                f"{detail}." if detail else "no nodes available to schedule pods.")
            self._recorder.unschedulable(pod, message)
            return
        bind_pod(self._pods, meta["namespace"], meta["name"], best)
        counts[best] += 1
        acc = used.setdefault(best, {})
        for name, q in pod_requests(pod).items():
            acc[name] = acc.get(name, Fraction(0)) + q
        self._recorder.scheduled(pod, best)
