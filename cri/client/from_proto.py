"""CRI v1 answers as the runtime service's dataclasses (cri.api)."""
from __future__ import annotations

from cri import api
from cri.proto import api_pb2 as pb


def _sandbox_metadata(m: pb.PodSandboxMetadata) -> api.PodSandboxMetadata:
    return api.PodSandboxMetadata(m.name, m.uid, m.namespace, m.attempt)


def sandbox_status(s: pb.PodSandboxStatus) -> api.PodSandboxStatus:
    """The netns path and cgroup parent stay unknown: the CRI tells them only in a runtime's own
    verbose info, and the kubelet needs neither."""
    ips = [s.network.ip] if s.network.ip else []
    ips += [p.ip for p in s.network.additional_ips]
    return api.PodSandboxStatus(
        id=s.id, metadata=_sandbox_metadata(s.metadata), state=pb.PodSandboxState.Name(s.state),
        created_at=s.created_at, ips=ips,
        labels=dict(s.labels), annotations=dict(s.annotations),
        host_network=s.linux.namespaces.options.network == pb.NODE)


def sandbox(s: pb.PodSandbox) -> api.PodSandboxStatus:
    """What ListPodSandbox tells: no IPs, no network mode."""
    return api.PodSandboxStatus(
        id=s.id, metadata=_sandbox_metadata(s.metadata), state=pb.PodSandboxState.Name(s.state),
        created_at=s.created_at, labels=dict(s.labels), annotations=dict(s.annotations))


def container_status(s: pb.ContainerStatus, sandbox_id: str) -> api.ContainerStatus:
    """ContainerStatus does not name the sandbox: sandbox_id comes from ListContainers."""
    return api.ContainerStatus(
        id=s.id, pod_sandbox_id=sandbox_id,
        metadata=api.ContainerMetadata(s.metadata.name, s.metadata.attempt),
        state=pb.ContainerState.Name(s.state), created_at=s.created_at,
        started_at=s.started_at, finished_at=s.finished_at, exit_code=s.exit_code,
        image=s.image.image, image_ref=s.image_ref, reason=s.reason, message=s.message,
        labels=dict(s.labels), annotations=dict(s.annotations), log_path=s.log_path)


def image(i: pb.Image) -> api.Image:
    return api.Image(id=i.id, repo_tags=list(i.repo_tags), repo_digests=list(i.repo_digests),
                     size=i.size, uid=i.uid.value if i.HasField("uid") else None,
                     username=i.username)
