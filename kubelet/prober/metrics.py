"""prober_probe_total, as the kubelet serves it on /metrics/probes: every probe run of every
container counted by kind and result. A container's series go when its probe worker does, as
the kubelet deletes them."""
from __future__ import annotations

import threading
from collections import Counter

from kubelet.pods import Pod
from kubelet.stats.prometheus import Family, Sample

# kind, result, container, pod, namespace, pod UID
_Key = tuple[str, str, str, str, str, str]


class ProbeCounts:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[_Key] = Counter()

    def add(self, kind: str, ok: bool, container: str, pod: Pod) -> None:
        key = (kind, "successful" if ok else "failed", container, pod.name, pod.namespace,
               pod.uid)
        with self._lock:
            self._counts[key] += 1

    def forget(self, kind: str, container: str, uid: str) -> None:
        with self._lock:
            for key in [k for k in self._counts
                        if (k[0], k[2], k[5]) == (kind, container, uid)]:
                del self._counts[key]

    def family(self) -> Family:
        with self._lock:
            samples = [Sample(n, {"probe_type": kind, "result": result, "container": container,
                                  "pod": pod, "namespace": namespace, "pod_uid": uid})
                       for (kind, result, container, pod, namespace, uid), n
                       in self._counts.items()]
        return Family("prober_probe_total", "Cumulative number of a liveness, readiness or "
                      "startup probe for a container by result.", "counter", samples)
