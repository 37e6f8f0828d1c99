"""The pod workers against a recording lifecycle: every pod of a burst gets its own worker,
which syncs it, terminates it once removed from its source and ends."""
from __future__ import annotations

import threading
import time

from kubelet.pods import Pod
from kubelet.sync.workers import PodWorkers


class Lifecycle:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.synced: dict[str, set[int]] = {}
        self.removed: list[str] = []

    def sync_pod(self, pod: Pod) -> tuple[bool, float | None]:
        with self.lock:
            self.synced.setdefault(pod.name, set()).add(threading.get_ident())
        return False, None

    def sync_terminating_pod(self, pod: Pod, grace_override: int | None) -> None:
        pass

    def sync_terminated_pod(self, pod: Pod) -> None:
        pass

    def remove_pod(self, pod: Pod) -> None:
        with self.lock:
            self.removed.append(pod.name)


def pod(i: int) -> Pod:
    return Pod({"metadata": {"name": f"p{i}", "namespace": "ns", "uid": f"u{i}"},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}})


def until(condition, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_a_burst_of_pods_gets_a_worker_each_that_ends_with_its_pod():
    lifecycle = Lifecycle()
    workers = PodWorkers(lifecycle, resync_interval=60)
    try:
        for i in range(50):
            workers.update(pod(i))
        assert until(lambda: len(lifecycle.synced) == 50)
        threads = set().union(*lifecycle.synced.values())
        assert len(threads) == 50       # one thread per pod, none shared
        assert len(workers.active_pods()) == 50
        for i in range(50):
            workers.update(pod(i), removed=True)
        assert until(lambda: len(lifecycle.removed) == 50)
        assert until(lambda: workers.known() == {})
    finally:
        workers.stop()
