"""The scheduling queue, as kube-scheduler's: activeQ (highest priority first, then the oldest),
backoffQ (pods that failed wait 1 s, doubled per attempt up to 10 s), and the unschedulable
pods parked until an event could make them fit (a node added or loosened, a pod's room freed)
or they have waited long enough. Touched by the scheduling thread only."""
from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

INITIAL_BACKOFF, MAX_BACKOFF = 1.0, 10.0


@dataclass
class QueuedPod:
    pod: dict
    requests: dict[str, int]
    attempts: int = 0
    parked_at: float = 0.0
    where: str = ""             # "active", "backoff", "unschedulable", or "" while in flight
    backoff_until: float = 0.0
    _entry: list = field(default_factory=list)   # its live heap entry, if any

    @property
    def uid(self) -> str:
        return self.pod["metadata"].get("uid", "")


def _order(pod: dict) -> tuple:
    return (-int((pod.get("spec") or {}).get("priority") or 0),
            pod["metadata"].get("creationTimestamp", ""))


def _relevant(old: dict, new: dict) -> bool:
    """An update that could change where a pod fits (its own status writes do not)."""
    return old.get("spec") != new.get("spec") or \
        old["metadata"].get("labels") != new["metadata"].get("labels")


class SchedulingQueue:
    def __init__(self) -> None:
        self._pods: dict[str, QueuedPod] = {}
        self._active: list[list] = []
        self._backoff: list[list] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._pods)

    def add(self, pod: dict, requests: dict[str, int]) -> None:
        """A pending pod seen (added or updated) on the watch."""
        uid = pod["metadata"].get("uid", "")
        qp = self._pods.get(uid)
        if qp is None:
            qp = self._pods[uid] = QueuedPod(pod, requests)
            self._push_active(qp)
            return
        old, qp.pod, qp.requests = qp.pod, pod, requests
        if qp.where == "unschedulable" and _relevant(old, pod):
            self._push_active(qp)
        elif qp.where == "active" and _order(old) != _order(pod):
            self._push_active(qp)

    def delete(self, uid: str) -> None:
        qp = self._pods.pop(uid, None)
        if qp is not None:
            self._unlink(qp)

    def pop(self, now: float) -> QueuedPod | None:
        """The next pod to schedule (after moving the pods whose backoff is over), or None."""
        while self._backoff and self._backoff[0][0] <= now:
            qp = heapq.heappop(self._backoff)[-1]
            if qp is not None:
                qp._entry = []
                self._push_active(qp)
        while self._active:
            qp = heapq.heappop(self._active)[-1]
            if qp is not None:
                qp._entry, qp.where = [], ""
                qp.attempts += 1
                return qp
        return None

    def next_backoff(self) -> float | None:
        """When the earliest backoff ends, if any pod is waiting on one."""
        while self._backoff and self._backoff[0][-1] is None:
            heapq.heappop(self._backoff)
        return self._backoff[0][0] if self._backoff else None

    def unschedulable(self, qp: QueuedPod, now: float) -> None:
        """A pod that fit nowhere: parked until an event or the flush moves it."""
        if self._pods.get(qp.uid) is not qp:
            return   # deleted or bound meanwhile
        qp.where, qp.parked_at = "unschedulable", now
        qp.backoff_until = now + self._backoff_of(qp)

    def retry(self, qp: QueuedPod, now: float) -> None:
        """A pod whose binding failed (still there, still unbound): back after its backoff."""
        self._pods[qp.uid] = qp
        qp.backoff_until = now + self._backoff_of(qp)
        self._push_backoff(qp)

    def done(self, uid: str) -> None:
        """Bound (assumed): no longer the queue's."""
        self._pods.pop(uid, None)

    def move_all(self, now: float) -> None:
        """An event that could make parked pods fit: each goes to activeQ, or to backoffQ
        while its backoff lasts."""
        for qp in self._pods.values():
            if qp.where == "unschedulable":
                self._requeue(qp, now)

    def flush(self, now: float, longer_than: float) -> None:
        """Parked pods that waited longer_than seconds go back, whatever the events."""
        for qp in self._pods.values():
            if qp.where == "unschedulable" and now - qp.parked_at >= longer_than:
                self._requeue(qp, now)

    def _requeue(self, qp: QueuedPod, now: float) -> None:
        if qp.backoff_until > now:
            self._push_backoff(qp)
        else:
            self._push_active(qp)

    @staticmethod
    def _backoff_of(qp: QueuedPod) -> float:
        return min(INITIAL_BACKOFF * 2 ** max(qp.attempts - 1, 0), MAX_BACKOFF)

    def _unlink(self, qp: QueuedPod) -> None:
        if qp._entry:
            qp._entry[-1] = None     # lazily dropped when it reaches the top
            qp._entry = []
        qp.where = ""

    def _push_active(self, qp: QueuedPod) -> None:
        self._unlink(qp)
        qp._entry = [*_order(qp.pod), next(self._seq), qp]
        qp.where = "active"
        heapq.heappush(self._active, qp._entry)

    def _push_backoff(self, qp: QueuedPod) -> None:
        self._unlink(qp)
        qp._entry = [qp.backoff_until, next(self._seq), qp]
        qp.where = "backoff"
        heapq.heappush(self._backoff, qp._entry)
