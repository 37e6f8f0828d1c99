"""The scheduler loop, in kube-scheduler's shape: while this server holds kube-scheduler's Lease
(scheduler.election), one thread lists pods and nodes once, then follows their watch into the
cache (scheduler.cache) and the scheduling queue (scheduler.queue), pops one pod at a time,
picks the least loaded node that fits (scheduler.fit), assumes the pod there and hands the
binding (and its Scheduled event) to a small pool, so that the next pod is decided while the
write is under way; a pod that fits nowhere is recorded (scheduler.recorder) and parked. A
watch that fell behind is listed again. Runs inside the API server, on its watch hub and
stores: of several servers on one storage, one schedules."""
from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from kubeapi.leaderelection import LeaderElector
from kubeapi.status import ApiError

from .. import resources
from ..registry.binding import bind_pod
from ..registry.store import Store
from ..watch import WatchEvent, WatchHub
from .cache import Cache
from .election import StoreLeaseClient, lease_config
from .fit import load, nodes_to_find, unfit_reasons
from .quantities import pod_requests
from .queue import QueuedPod, SchedulingQueue
from .recorder import RETRY_SECONDS, SCHEDULER_NAME, Recorder

_TERMINAL = ("Succeeded", "Failed")
BINDERS = 4
# How often parked pods are checked for having waited RETRY_SECONDS (kube: every 30 s for 5 min).
FLUSH_SECONDS = 5.0
IDLE_WAIT = 0.2


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
        term = _Term(self._pods, self._nodes, self._hub, self._recorder)
        try:
            term.run(lambda: self._stop.is_set() or ended.is_set())
        finally:
            term.close()


class _Term:
    """One leadership term: its watches, cache, queue and binding pool."""

    def __init__(self, pods: Store, nodes: Store, hub: WatchHub, recorder: Recorder) -> None:
        self._pods, self._nodes, self._hub = pods, nodes, hub
        self._recorder = recorder
        self._binders: ThreadPoolExecutor | None = None
        self._failed_binds: queue.SimpleQueue[QueuedPod] = queue.SimpleQueue()
        self._pod_watch = self._node_watch = None
        self._cache, self._queue = Cache(), SchedulingQueue()
        self._pod_rev = self._node_rev = 0
        self._next_start = 0     # where the next search over the nodes begins, as kube's

    def close(self) -> None:
        if self._binders is not None:
            self._binders.shutdown(wait=True)
        self._close_watches()

    def _close_watches(self) -> None:
        for w in (self._pod_watch, self._node_watch):
            if w is not None:
                w.close()

    def run(self, stopped) -> None:
        self._sync()
        next_flush = time.monotonic() + FLUSH_SECONDS
        while not stopped():
            if self._pod_watch.overflowed or self._node_watch.overflowed:
                self._sync()
            self._drain()
            now = time.monotonic()
            if now >= next_flush:
                self._queue.flush(now, RETRY_SECONDS)
                next_flush = now + FLUSH_SECONDS
            qp = self._queue.pop(now)
            if qp is not None:
                self._schedule_one(qp)
                continue
            backoff = self._queue.next_backoff()
            wait = IDLE_WAIT if backoff is None else min(IDLE_WAIT, max(backoff - now, 0.0))
            ev = self._pod_watch.next(wait)
            if ev is not None:
                self._on_pod(ev)

    def _sync(self) -> None:
        """List once and follow the watch from there (at the start, and when a watch fell
        behind); the bindings under way finish first, so that the list shows them."""
        if self._binders is not None:
            self._binders.shutdown(wait=True)
        self._binders = ThreadPoolExecutor(BINDERS, thread_name_prefix="scheduler-bind")
        self._close_watches()
        self._pod_watch = self._hub.open(self._pods.rtype.key_prefix())
        self._node_watch = self._hub.open(self._nodes.rtype.key_prefix())
        self._cache, self._queue = Cache(), SchedulingQueue()
        while not self._failed_binds.empty():
            self._failed_binds.get()
        nodes = self._nodes.list("")
        for node in nodes.items:
            self._cache.set_node(node)
        pods = self._pods.list("")
        for pod in pods.items:
            self._on_pod_object(pod)
        self._node_rev, self._pod_rev = nodes.revision, pods.revision

    def _drain(self) -> None:
        now = time.monotonic()
        while (ev := self._node_watch.next(0)) is not None:
            self._on_node(ev, now)
        while (ev := self._pod_watch.next(0)) is not None:
            self._on_pod(ev)
        while not self._failed_binds.empty():
            qp = self._failed_binds.get()
            if self._cache.is_assumed(qp.uid):    # not deleted nor bound elsewhere meanwhile
                self._cache.forget(qp.uid)
                self._queue.retry(qp, now)

    def _on_node(self, ev: WatchEvent, now: float) -> None:
        if ev.rev <= self._node_rev:
            return     # already in the list
        if ev.type == "DELETED":
            self._cache.remove_node(ev.obj["metadata"]["name"])
        elif self._cache.set_node(ev.obj):
            self._queue.move_all(now)

    def _on_pod(self, ev: WatchEvent) -> None:
        if ev.rev <= self._pod_rev:
            return
        if ev.type == "DELETED":
            uid = ev.obj["metadata"].get("uid", "")
            self._queue.delete(uid)
            if self._cache.remove_pod(uid):
                self._queue.move_all(time.monotonic())
            return
        self._on_pod_object(ev.obj)

    def _on_pod_object(self, pod: dict) -> None:
        uid = pod["metadata"].get("uid", "")
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            self._queue.delete(uid)
            if (pod.get("status") or {}).get("phase") not in _TERMINAL:
                self._cache.bound(uid, node, pod)
            elif self._cache.remove_pod(uid):
                self._queue.move_all(time.monotonic())
        elif self._cache.is_assumed(uid):
            return     # our binding is under way; this is the pod before it
        elif _wants_scheduling(pod):
            self._queue.add(pod, pod_requests(pod))
        else:
            self._queue.delete(uid)

    def _schedule_one(self, qp: QueuedPod) -> None:
        nodes = self._cache.schedulable_nodes()
        total = len(nodes)
        wanted = nodes_to_find(total)
        reasons: Counter[str] = Counter()
        best, best_score, feasible, looked = None, 0.0, 0, 0
        for looked in range(1, total + 1):
            info = nodes[(self._next_start + looked - 1) % total]
            why = unfit_reasons(qp.pod, qp.requests, info)
            if why:
                reasons.update(why)
                continue
            score = load(info)
            if best is None or score < best_score:
                best, best_score = info.name, score
            feasible += 1
            if feasible >= wanted:
                break
        if total:
            self._next_start = (self._next_start + looked) % total
        if best is None:
            self._unschedulable(qp, total, reasons)
            return
        self._cache.assume(qp.uid, qp.requests, best)
        self._queue.done(qp.uid)
        self._binders.submit(self._bind, qp, best)

    def _unschedulable(self, qp: QueuedPod, total: int, reasons: Counter[str]) -> None:
        detail = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
        message = f"0/{total} nodes are available: " + (
            f"{detail}." if detail else "no nodes available to schedule pods.")
        try:
            self._recorder.unschedulable(qp.pod, message)
        except ApiError:
            pass    # the pod went away; its DELETED event takes it off the queue
        self._queue.unschedulable(qp, time.monotonic())

    def _bind(self, qp: QueuedPod, node: str) -> None:
        meta = qp.pod["metadata"]
        try:
            bind_pod(self._pods, meta["namespace"], meta["name"], node)
        except (ApiError, ValueError):
            self._failed_binds.put(qp)
            return
        try:
            self._recorder.scheduled(qp.pod, node)
        except ApiError:
            pass    # the namespace is going away; the binding stands
