"""/metrics: a few of the kubelet's own metrics (pkg/kubelet/metrics), counted from the
runtime service at the time of the scrape: kubelet_node_name, kubelet_running_pods (pods
with a ready sandbox), kubelet_running_containers by container_state, and the
kubelet_pod_start_duration_seconds histogram."""
from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from cri.api import CONTAINER_RUNNING, SANDBOX_READY, RuntimeService

from kubelet.pods import Pod
from kubelet.stats.prometheus import Family, Sample, go_float, render

_STATES = ("created", "running", "exited", "unknown")
# client_golang's DefBuckets, which the kubelet's histogram uses.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class PodStartDurations:
    """kubelet_pod_start_duration_seconds: for each pod once, the time from its sandbox's
    creation (right after the kubelet first syncs it) to the start of the last of its
    containers. Pods are looked at when /metrics is scraped: one that started and went away
    between two scrapes is not counted."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._counts = [0] * len(_BUCKETS)
        self._count = 0
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, known_pods: list[Pod], runtime: RuntimeService) -> None:
        for pod in known_pods:
            uid = pod.uid
            if uid in self._seen:
                continue
            sandboxes = [s for s in runtime.list_pod_sandboxes(uid) if s.state == SANDBOX_READY]
            if not sandboxes:
                continue
            sandbox = max(sandboxes, key=lambda s: s.created_at)
            running = [c for c in runtime.list_containers(sandbox_id=sandbox.id)
                       if c.state == CONTAINER_RUNNING]
            if len({c.metadata.name for c in running}) < len(pod.containers):
                continue
            duration = max(max(c.started_at for c in running) - sandbox.created_at, 0) / 1e9
            with self._lock:
                self._seen.add(uid)
                self._count += 1
                self._sum += duration
                for i, bound in enumerate(_BUCKETS):
                    if duration <= bound:
                        self._counts[i] += 1

    def forget_except(self, uids: set[str]) -> None:
        """Pods gone from the kubelet need not be remembered (a uid never comes back)."""
        with self._lock:
            self._seen &= uids

    def family(self) -> Family:
        with self._lock:
            samples = [Sample(n, {"le": go_float(b)}, suffix="_bucket")
                       for b, n in zip(_BUCKETS, self._counts)]
            samples += [Sample(self._count, {"le": "+Inf"}, suffix="_bucket"),
                        Sample(self._sum, suffix="_sum"), Sample(self._count, suffix="_count")]
        return Family("kubelet_pod_start_duration_seconds", "Duration in seconds from kubelet "
                      "seeing a pod for the first time to the pod starting to run",
                      "histogram", samples)


def families(node_name: str, runtime: RuntimeService,
             known_pods: Callable[[], dict[str, Pod]],
             starts: PodStartDurations) -> list[Family]:
    sandboxes = runtime.list_pod_sandboxes()
    running_pods = len({s.metadata.uid for s in sandboxes if s.state == SANDBOX_READY})
    states = Counter(c.state.removeprefix("CONTAINER_").lower()
                     for c in runtime.list_containers())
    known = known_pods()
    starts.observe(list(known.values()), runtime)
    starts.forget_except(set(known))
    return [
        Family("kubelet_node_name", "The node's name. The count is always 1.", "gauge",
               [Sample(1, {"node": node_name})]),
        Family("kubelet_running_pods", "Number of pods that have a running pod sandbox",
               "gauge", [Sample(running_pods)]),
        Family("kubelet_running_containers", "Number of containers currently running",
               "gauge", [Sample(states.get(s, 0), {"container_state": s}) for s in _STATES
                         if states.get(s)]),
        starts.family(),
    ]


def text(node_name: str, runtime: RuntimeService, known_pods: Callable[[], dict[str, Pod]],
         starts: PodStartDurations) -> str:
    return render(families(node_name, runtime, known_pods, starts))
