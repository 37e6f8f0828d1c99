"""The runtime's view of one pod (the kubelet's kubecontainer.PodStatus): its sandboxes and
containers, newest first, read from the runtime service in one go."""
from __future__ import annotations

from dataclasses import dataclass, field

from cri.api import (CONTAINER_RUNNING, SANDBOX_READY, ContainerStatus, PodSandboxStatus,
                     RuntimeService)
from kubelet import labels


@dataclass
class PodRuntime:
    uid: str
    sandboxes: list[PodSandboxStatus] = field(default_factory=list)   # newest first
    containers: list[ContainerStatus] = field(default_factory=list)   # newest first

    @classmethod
    def read(cls, runtime: RuntimeService, pod_uid: str) -> PodRuntime:
        sandboxes = sorted(runtime.list_pod_sandboxes(pod_uid), key=lambda s: s.created_at,
                           reverse=True)
        containers = sorted(runtime.list_containers(pod_uid=pod_uid),
                            key=lambda c: c.created_at, reverse=True)
        return cls(pod_uid, sandboxes, containers)

    def latest(self, container_name: str) -> ContainerStatus | None:
        """The newest container of that name."""
        for c in self.containers:
            if c.metadata.name == container_name:
                return c
        return None

    def of_name(self, container_name: str) -> list[ContainerStatus]:
        return [c for c in self.containers if c.metadata.name == container_name]

    def running(self) -> list[ContainerStatus]:
        return [c for c in self.containers if c.state == CONTAINER_RUNNING]

    @property
    def ips(self) -> list[str]:
        """The newest ready sandbox's addresses."""
        for s in self.sandboxes:
            if s.state == SANDBOX_READY:
                return list(s.ips)
        return []

    def ready_sandbox(self) -> PodSandboxStatus | None:
        if self.sandboxes and self.sandboxes[0].state == SANDBOX_READY:
            return self.sandboxes[0]
        return None

    def restart_count(self, container_name: str) -> int:
        latest = self.latest(container_name)
        return labels.restart_count(latest.annotations) if latest else 0
