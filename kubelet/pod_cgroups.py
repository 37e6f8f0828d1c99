"""Pod cgroups: <cgroupRoot>/kubepods/pod<uid>, which the pod's containers nest under (the
runtime makes it with the first container's cgroup; the kubelet removes it once the pod is
terminated). Issue 9 adds the QoS level (kubepods/burstable/pod<uid>,
kubepods/besteffort/pod<uid>) in parent_of() and the pod-level limits."""
from __future__ import annotations

import os

import cgroups


class PodCgroups:
    def __init__(self, cgroup_root: str) -> None:
        self.kubepods = cgroup_root.rstrip("/") + "/kubepods"

    def parent_of(self, pod: dict) -> str:
        return f"{self.kubepods}/pod{pod['metadata']['uid']}"

    def destroy(self, pod_uid: str) -> None:
        """Kills whatever is left in it and removes it; no error if it is gone."""
        cgroups.open_cgroup(f"{self.kubepods}/pod{pod_uid}").destroy()

    def pod_uids(self) -> list[str]:
        """The pods that have a cgroup here (to find the orphans)."""
        cg = cgroups.open_cgroup(self.kubepods)
        found: set[str] = set()
        for directory in cg.hierarchy_dirs().values():
            try:
                names = os.listdir(directory)
            except FileNotFoundError:
                continue
            found.update(n[3:] for n in names if n.startswith("pod"))
        return sorted(found)
