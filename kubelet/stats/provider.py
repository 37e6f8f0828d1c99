"""The kubelet's stats provider: one snapshot of the node, and of every pod with running
containers, read from the pod and container cgroups (kubelet/cm/pod_cgroups lays them out:
<pod cgroup>/<container id>), /proc and statvfs. CPU rates (usageNanoCores) come from the
previous snapshot of the same cgroup, as cadvisor derives them from its last sample."""
from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import cgroups
from cri.api import RuntimeService
from kubeapi import timefmt
from overlay import snapshots
from overlay.store import Store

from kubelet.cm.pod_cgroups import PodCgroups
from kubelet.pod_runtime import PodRuntime
from kubelet.pods import Pod
from kubelet.stats import node
from kubelet.stats.node import Interface
from cgroups.usage import Usage, read


@dataclass
class Filesystem:
    capacity: int
    available: int
    used: int
    inodes: int
    inodes_free: int
    inodes_used: int


@dataclass
class ContainerSample:
    name: str
    start_time: float            # seconds since the epoch
    usage: Usage
    nano_cores: int | None       # None until there is an earlier sample
    logs_used: int | None = None
    rootfs_used: int | None = None   # what the container wrote to its root filesystem


@dataclass
class PodSample:
    name: str
    namespace: str
    uid: str
    start_time: float
    usage: Usage | None
    nano_cores: int | None
    containers: list[ContainerSample] = field(default_factory=list)
    interfaces: list[Interface] = field(default_factory=list)


@dataclass
class Snapshot:
    node_name: str
    node_start: float
    node: Usage
    node_nano_cores: int | None
    pods: list[PodSample]
    interfaces: list[Interface] = field(default_factory=list)
    root_fs: Filesystem | None = None     # the filesystem of the kubelet's root dir
    logs_fs: Filesystem | None = None     # the filesystem of the pod logs


def filesystem(path: str, used: int | None = None) -> Filesystem | None:
    """statvfs of path's filesystem; used defaults to what the whole filesystem uses."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    capacity = st.f_blocks * st.f_frsize
    whole = (st.f_blocks - st.f_bfree) * st.f_frsize
    return Filesystem(capacity, st.f_bavail * st.f_frsize, whole if used is None else used,
                      st.f_files, st.f_ffree, st.f_files - st.f_ffree)


def directory_size(path: str) -> int:
    """Bytes the files of a directory tree take (a container's logs, its rootfs' upper
    directory)."""
    total = 0
    for top, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(top, name)).st_blocks * 512
            except OSError:
                continue
    return total


class StatsProvider:
    def __init__(self, node_name: str, runtime: RuntimeService, pod_cgroups: PodCgroups,
                 known_pods: Callable[[], dict[str, Pod]],
                 pod_status: Callable[[str], dict | None], root_dir: str,
                 pod_logs_dir: str, image_store: Store | None) -> None:
        self.node_name = node_name
        self.runtime = runtime
        self.pod_cgroups = pod_cgroups
        self.known_pods = known_pods
        self.pod_status = pod_status
        self.root_dir = root_dir
        self.pod_logs_dir = pod_logs_dir
        self.image_store = image_store
        self._previous: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def snapshot(self, full: bool = False) -> Snapshot:
        """CPU and memory of the node, its pods and their running containers; full: also
        filesystems, logs and network (what /stats/summary adds to /metrics/resource)."""
        hierarchies = cgroups.hierarchies()
        seen: set[str] = set()
        node_usage = node.usage()
        snap = Snapshot(self.node_name, node.boot_time(), node_usage,
                        self._rate("node", node_usage, seen), [])
        for pod in self.known_pods().values():
            sample = self._pod(pod, hierarchies, seen, full)
            if sample is not None:
                snap.pods.append(sample)
        if full:
            snap.interfaces = node.interfaces()
            snap.root_fs = filesystem(self.root_dir)
            snap.logs_fs = filesystem(self.pod_logs_dir)
        with self._lock:
            for key in [k for k in self._previous if k not in seen]:
                del self._previous[key]
        return snap

    def _pod(self, pod: Pod, hierarchies: cgroups.Hierarchies, seen: set[str],
             full: bool) -> PodSample | None:
        uid = pod.uid
        running = PodRuntime.read(self.runtime, uid).running()
        if not running:
            return None
        parent = self.pod_cgroups.parent_of(pod)
        status = self.pod_status(uid) or pod.status
        start = _timestamp(status.get("startTime")) or min(c.created_at for c in running) / 1e9
        pod_usage = read(parent, hierarchies)
        sample = PodSample(pod.name, pod.namespace, uid, start, pod_usage,
                           self._rate(uid, pod_usage, seen))
        for c in sorted(running, key=lambda c: c.metadata.name):
            usage = read(f"{parent}/{c.id}", hierarchies)
            if usage is None:
                continue
            container = ContainerSample(c.metadata.name, c.started_at / 1e9, usage,
                                        self._rate(c.id, usage, seen))
            if full:
                if c.log_path:
                    container.logs_used = directory_size(os.path.dirname(c.log_path))
                if self.image_store is not None:     # None: a remote runtime's snapshots
                    container.rootfs_used = directory_size(
                        os.path.join(snapshots.path(self.image_store, c.id), "upper"))
            sample.containers.append(container)
        if full:
            pids = cgroups.open_cgroup(parent, hierarchies).pids()
            if pids:
                sample.interfaces = node.interfaces(pids[0])
        return sample

    def _rate(self, key: str, usage: Usage | None, seen: set[str]) -> int | None:
        """Nanocores since the previous sample of key, which this one replaces."""
        if usage is None:
            return None
        seen.add(key)
        with self._lock:
            previous = self._previous.get(key)
            self._previous[key] = (usage.time, usage.cpu_ns)
        if previous is None or usage.time <= previous[0] or usage.cpu_ns < previous[1]:
            return None
        return int((usage.cpu_ns - previous[1]) / (usage.time - previous[0]))


def _timestamp(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return timefmt.parse(value)
    except ValueError:
        return None
