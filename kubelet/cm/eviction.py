"""Memory-pressure eviction (the kubelet's eviction manager, hard threshold on
memory.available): every monitoring period, when the node's available memory is below
evictionHard's memory.available, one pod is evicted, chosen as the kubelet ranks them
(rankMemoryPressure): pods using more memory than they request first, then lower priority,
then the most memory above the request. BestEffort pods request nothing, so they go first;
Burstable pods within their requests go last; static and system-critical pods never go. An
evicted pod's containers are killed at once and the pod ends Failed with reason Evicted and
the kubelet's message. The node's MemoryPressure condition comes from the same signal
(nodestatus/node_status.py)."""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

import cgroups
from cri.api import RuntimeService

from kubelet import machine
from kubelet.cm import qos
from kubelet.cm.pod_cgroups import PodCgroups
from kubelet.config import KubeletConfig
from kubelet.nodestatus.node_status import threshold
from kubelet.pod_runtime import PodRuntime
from kubelet.pods import Pod

log = logging.getLogger("kubelet.eviction")

MONITORING_PERIOD = 10.0     # the kubelet's evictionMonitoringPeriod
SYSTEM_CRITICAL = 2_000_000_000
_BINARY_SUFFIXES = ("Ei", 60), ("Pi", 50), ("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)


def binary_quantity(n: int) -> str:
    """As a Kubernetes BinarySI quantity prints: the largest exact suffix, else bytes."""
    for suffix, shift in _BINARY_SUFFIXES:
        if n and n % (1 << shift) == 0:
            return f"{n >> shift}{suffix}"
    return str(n)


def working_set(cgroup_path: str) -> int | None:
    """Bytes in use that cannot be dropped at once (usage less the inactive file cache), as
    the kubelet measures memory; None if the cgroup is gone."""
    directory = cgroups.open_cgroup(cgroup_path).hierarchy_dirs().get("memory")
    if directory is None:     # cgroup v2: one directory for every controller
        dirs = cgroups.open_cgroup(cgroup_path).hierarchy_dirs()
        directory = next(iter(dirs.values()), None)
        usage_file, inactive_key = "memory.current", "inactive_file"
    else:
        usage_file, inactive_key = "memory.usage_in_bytes", "total_inactive_file"
    try:
        with open(os.path.join(directory, usage_file)) as f:
            usage = int(f.read())
        with open(os.path.join(directory, "memory.stat")) as f:
            stat = dict(line.split() for line in f if line.strip())
    except (OSError, TypeError, ValueError):
        return None
    return max(usage - int(stat.get(inactive_key, 0)), 0)


def critical(pod: Pod) -> bool:
    """The kubelet never evicts these (kubelettypes.IsCriticalPod): static pods, and pods of
    system-critical priority."""
    return pod.is_static or pod.priority >= SYSTEM_CRITICAL


class EvictionManager:
    def __init__(self, config: KubeletConfig, runtime: RuntimeService, pod_cgroups: PodCgroups,
                 active_pods: Callable[[], list[Pod]],
                 evict: Callable[[Pod, str], None]) -> None:
        self.config = config
        self.runtime = runtime
        self.pod_cgroups = pod_cgroups
        self.active_pods = active_pods
        self.evict = evict
        self.memory_pressure = False
        self._evicted: set[str] = set()

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(MONITORING_PERIOD):
            try:
                self.synchronize()
            except Exception:  # noqa: BLE001 - the next round tries again
                log.exception("eviction round failed")

    def synchronize(self) -> Pod | None:
        """One round; the pod it evicted, if any."""
        value = self.config.eviction_hard.get("memory.available")
        if not value:
            return None
        capacity = machine.capacity(self.config.root_dir).memory
        floor = threshold(value, capacity)
        available = machine.signals(self.config.root_dir).memory_available
        self.memory_pressure = available < floor
        if not self.memory_pressure:
            return None
        candidates = []
        for pod in self.active_pods():
            if pod.uid in self._evicted or pod.is_terminal or critical(pod):
                continue
            usage = working_set(self.pod_cgroups.parent_of(pod))
            if usage is None:
                continue
            candidates.append((pod, usage - qos.pod_requests(pod, "memory")))
        if not candidates:
            log.warning("memory.available %d below %d but no pod to evict", available, floor)
            return None
        # exceeding requests first, then lower priority, then the most memory above requests
        candidates.sort(key=lambda c: (c[1] <= 0, c[0].priority, -c[1]))
        pod = candidates[0][0]
        message = (f"The node was low on resource: memory. Threshold quantity: {value}, "
                   f"available: {binary_quantity(available // 1024 * 1024)}. ")
        message += self._container_usage(pod)
        log.warning("evicting %s: %s", pod.full_name, message)
        self._evicted.add(pod.uid)
        self.evict(pod, message)
        return pod

    def _container_usage(self, pod: Pod) -> str:
        """The containers using more memory than they request, as the message names them."""
        text = ""
        parent = self.pod_cgroups.parent_of(pod)
        by_name = {c["name"]: c for c in pod.containers}
        for c in PodRuntime.read(self.runtime, pod.uid).running():
            spec = by_name.get(c.metadata.name)
            usage = working_set(f"{parent}/{c.id}")
            if spec is None or usage is None:
                continue
            request = qos.request(spec, "memory")
            if usage > request:
                requested = (spec.get("resources") or {}).get("requests", {}).get("memory", "0")
                text += (f"Container {c.metadata.name} was using {binary_quantity(usage)}, "
                         f"request is {requested}, has larger consumption of memory. ")
        return text

    def forget(self, uid: str) -> None:
        self._evicted.discard(uid)
