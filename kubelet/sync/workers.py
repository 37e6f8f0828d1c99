"""One worker thread per pod (the kubelet's pod_workers.go): a pod's syncs never overlap, each
sync sees the newest spec, and a pod moves one way through syncing -> terminating ->
terminated -> removed. A worker wakes for a pod update, a container event of its pod, the time a
back-off ends, or the periodic resync; nothing else."""
from __future__ import annotations

import _thread
import logging
import random
import threading
import time
from typing import Protocol

from kubelet.pods import Pod


log = logging.getLogger("kubelet.workers")

SYNCING, TERMINATING, TERMINATED = "syncing", "terminating", "terminated"
ERROR_RETRY = 10.0


class PodLifecycle(Protocol):
    """What the workers call; the Kubelet implements it."""

    def sync_pod(self, pod: Pod) -> tuple[bool, float | None]:
        """(the pod is terminal now, seconds until a retry is due or None)."""

    def sync_terminating_pod(self, pod: Pod, grace_override: int | None) -> None: ...

    def sync_terminated_pod(self, pod: Pod) -> None: ...

    def remove_pod(self, pod: Pod) -> None: ...


class _Worker:
    __slots__ = ("uid", "pod", "removed", "state", "grace_override", "woken", "next_at",
                 "cond")

    def __init__(self, pod: Pod, lock: threading.Lock) -> None:
        # Its own condition on the shared lock: waking one pod wakes one thread.
        self.cond = threading.Condition(lock)
        self.uid = pod.uid
        self.pod = pod
        self.removed = False
        self.state = SYNCING
        self.grace_override: int | None = None
        self.woken = True
        self.next_at: float | None = None


class PodWorkers:
    def __init__(self, lifecycle: PodLifecycle, resync_interval: float) -> None:
        self.lifecycle = lifecycle
        self.resync_interval = resync_interval
        self._workers: dict[str, _Worker] = {}
        self._lock = threading.Lock()
        self._stopped = False

    def update(self, pod: Pod, removed: bool = False) -> None:
        """A new view of the pod from its source; removed: it is gone from the source. A view
        that differs only in its status (our own writes coming back) wakes nobody."""
        with self._lock:
            w = self._workers.get(pod.uid)
            if w is None:
                if removed:
                    return
                self._start(_Worker(pod, self._lock))
                return
            if removed:
                w.removed = True
            else:
                significant = pod.desired != w.pod.desired
                w.pod = pod
                if not significant:
                    return
            w.woken = True
            w.cond.notify()

    def reject(self, pod: Pod) -> None:
        """A pod admission refused: it goes straight to terminated, never to the runtime."""
        with self._lock:
            if pod.uid not in self._workers:
                w = _Worker(pod, self._lock)
                w.state = TERMINATED
                self._start(w)

    def _start(self, w: _Worker) -> None:
        self._workers[w.uid] = w
        # A bare thread: threading.Thread.start() waits until the new thread has run, two
        # turns of the interpreter lock, which the pod source (one thread, one pod after the
        # other) waited for among the busy workers of a burst: ~25 ms per pod, the 100th pod
        # of 100 seen 2-3 s after its creation (another watcher: 50 ms).
        _thread.start_new_thread(self._run, (w,))

    def wake(self, uid: str) -> None:
        with self._lock:
            w = self._workers.get(uid)
            if w is not None:
                w.woken = True
                w.cond.notify()

    def known(self) -> dict[str, Pod]:
        """uid -> newest pod, of every pod that has a worker."""
        with self._lock:
            return {uid: w.pod for uid, w in self._workers.items()}

    def active_pods(self) -> list[Pod]:
        """Pods that are not terminated yet (what admission counts)."""
        with self._lock:
            return [w.pod for w in self._workers.values() if w.state != TERMINATED]

    def terminate(self, uid: str, grace_override: int) -> None:
        """The pod's next sync finds it terminal (its status says so) and kills it with this
        grace period."""
        with self._lock:
            w = self._workers.get(uid)
            if w is not None:
                w.grace_override = grace_override if w.grace_override is None else \
                    min(grace_override, w.grace_override)
                w.woken = True
                w.cond.notify()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            for w in self._workers.values():
                w.cond.notify()

    def _wait(self, w: _Worker) -> tuple[Pod, bool] | None:
        with self._lock:
            while not w.woken and not self._stopped:
                timeout = None if w.next_at is None else w.next_at - time.monotonic()
                if timeout is not None and timeout <= 0:
                    break
                w.cond.wait(timeout)
            if self._stopped:
                return None
            w.woken = False
            return w.pod, w.removed

    def _run(self, w: _Worker) -> None:
        while (seen := self._wait(w)) is not None:
            pod, removed = seen
            try:
                if self._step(w, pod, removed):
                    with self._lock:
                        self._workers.pop(w.uid, None)
                    return
            except Exception:  # noqa: BLE001 - a failed sync is retried, whatever the cause
                log.exception("sync of %s failed", pod.full_name)
                w.next_at = time.monotonic() + ERROR_RETRY

    def _step(self, w: _Worker, pod: Pod, removed: bool) -> bool:
        """One round for the pod; True when the pod is gone and the worker ends."""
        if w.state == SYNCING:
            if pod.is_deleted or removed:
                w.state = TERMINATING
            else:
                terminal, retry = self.lifecycle.sync_pod(pod)
                if terminal:
                    w.state = TERMINATING
                else:
                    resync = self.resync_interval * (1 + random.random() * 0.5)
                    w.next_at = time.monotonic() + min(retry if retry is not None else resync,
                                                       resync)
                    return False
        if w.state == TERMINATING:
            if pod.is_deleted or removed:
                grace = max(pod.deletion_grace_period, 1)
                # a later deletion may shorten the grace period, never lengthen it
                w.grace_override = grace if w.grace_override is None else \
                    min(grace, w.grace_override)
            self.lifecycle.sync_terminating_pod(pod, w.grace_override)
            w.state = TERMINATED
        # Every round while terminated: a deletion that comes now must still be finished.
        self.lifecycle.sync_terminated_pod(pod)
        w.next_at = None
        if removed:
            self.lifecycle.remove_pod(pod)
            return True
        return False
