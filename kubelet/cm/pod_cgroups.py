"""Pod cgroups, as the kubelet's QoS and pod container managers lay them out under
<cgroupRoot>/kubepods: Guaranteed pods directly in it, the others in kubepods/burstable and
kubepods/besteffort (which gets the minimum cpu shares); each pod in pod<uid> with its pod-level
limits (qos.pod_resources, and podPidsLimit), made before its first container, which nests
below. The kubelet removes a pod's cgroup once the pod is terminated."""
from __future__ import annotations

import os

import cgroups

from kubelet.cm import qos
from kubelet.pods import Pod

_LEVELS = {qos.GUARANTEED: "", qos.BURSTABLE: "/burstable", qos.BEST_EFFORT: "/besteffort"}


class PodCgroups:
    def __init__(self, cgroup_root: str, pod_pids_limit: int = -1) -> None:
        self.kubepods = cgroup_root.rstrip("/") + "/kubepods"
        self.pod_pids_limit = pod_pids_limit
        self._hierarchies: cgroups.Hierarchies | None = None

    def _open(self, path: str) -> cgroups.Cgroup:
        # Detecting the hierarchies reads /proc/self/mountinfo, which every pod's mounts make
        # longer (6 ms at 300 lines, several per pod start and per terminated pod's round):
        # once per kubelet is enough, cgroup mounts do not move under a running node.
        if self._hierarchies is None:
            self._hierarchies = cgroups.hierarchies()
        return cgroups.open_cgroup(path, self._hierarchies)

    def parent_of(self, pod: Pod) -> str:
        return f"{self.kubepods}{_LEVELS[pod.qos_class]}/pod{pod.uid}"

    def ensure(self, pod: Pod) -> None:
        """The pod's cgroup (and its QoS level's) exists with the pod's limits."""
        level = _LEVELS[pod.qos_class]
        if level:
            parent = self._open(self.kubepods + level)
            if not parent.exists():
                parent.create()
                if level == _LEVELS[qos.BEST_EFFORT]:
                    parent.apply({"cpu": {"shares": qos.MIN_SHARES}})
        cg = self._open(self.parent_of(pod))
        cg.create()
        cg.apply(qos.pod_resources(pod, self.pod_pids_limit))

    def destroy(self, pod_uid: str) -> None:
        """Kills whatever is left in it and removes it; no error if it is gone."""
        for level in _LEVELS.values():
            self._open(f"{self.kubepods}{level}/pod{pod_uid}").destroy()

    def pod_uids(self) -> list[str]:
        """The pods that have a cgroup here (to find the orphans)."""
        found: set[str] = set()
        for level in _LEVELS.values():
            cg = self._open(self.kubepods + level)
            for directory in cg.hierarchy_dirs().values():
                try:
                    names = os.listdir(directory)
                except FileNotFoundError:
                    continue
                found.update(n[3:] for n in names if n.startswith("pod"))
        return sorted(found)
