"""The runtime service's dataclasses (cri.api) as CRI v1 requests: the kubelet's side of what
cri.proto_convert reads on pycontainer-cri's side."""
from __future__ import annotations

from cri import api
from cri.proto import api_pb2 as pb

_PROPAGATION = {"private": pb.PROPAGATION_PRIVATE, "rslave": pb.PROPAGATION_HOST_TO_CONTAINER,
                "rshared": pb.PROPAGATION_BIDIRECTIONAL}
_PROTOCOL = {"TCP": pb.TCP, "UDP": pb.UDP, "SCTP": pb.SCTP}


def _mode(host: bool, own: int = pb.POD) -> int:
    return pb.NODE if host else own


def sandbox_config(c: api.PodSandboxConfig) -> pb.PodSandboxConfig:
    m = c.metadata
    out = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=m.name, uid=m.uid, namespace=m.namespace,
                                       attempt=m.attempt),
        hostname=c.hostname, log_directory=c.log_directory, labels=c.labels,
        annotations=c.annotations,
        port_mappings=[pb.PortMapping(protocol=_PROTOCOL.get(p.protocol, pb.TCP),
                                      container_port=p.container_port, host_port=p.host_port,
                                      host_ip=p.host_ip) for p in c.port_mappings])
    out.linux.cgroup_parent = c.cgroup_parent
    ns = out.linux.security_context.namespace_options
    # A pod without shareProcessNamespace: one PID namespace per container, as the kubelet asks.
    ns.network, ns.ipc = _mode(c.host_network), _mode(c.host_ipc)
    ns.pid = _mode(c.host_pid, pb.CONTAINER)
    out.linux.sysctls.update(c.sysctls)
    out.linux.security_context.privileged = c.privileged
    return out


def resources(oci: dict) -> pb.LinuxContainerResources:
    """An OCI linux.resources as the CRI's (absent values are 0: unset)."""
    cpu, memory = oci.get("cpu") or {}, oci.get("memory") or {}
    out = pb.LinuxContainerResources(
        cpu_period=cpu.get("period") or 0, cpu_quota=cpu.get("quota") or 0,
        cpu_shares=cpu.get("shares") or 0, cpuset_cpus=cpu.get("cpus") or "",
        cpuset_mems=cpu.get("mems") or "", memory_limit_in_bytes=memory.get("limit") or 0,
        memory_swap_limit_in_bytes=memory.get("swap") or 0,
        hugepage_limits=[pb.HugepageLimit(page_size=h["pageSize"], limit=h["limit"])
                         for h in oci.get("hugepageLimits") or []])
    out.unified.update(oci.get("unified") or {})
    return out


def _security_context(linux: api.LinuxContainerConfig, sandbox: api.PodSandboxConfig
                      ) -> pb.LinuxContainerSecurityContext:
    sc = pb.LinuxContainerSecurityContext(
        supplemental_groups=linux.supplemental_groups, readonly_rootfs=linux.readonly_rootfs,
        no_new_privs=linux.no_new_privs, privileged=linux.privileged,
        masked_paths=linux.masked_paths, readonly_paths=linux.readonly_paths,
        run_as_username=linux.run_as_username,
        capabilities=pb.Capability(add_capabilities=linux.add_capabilities,
                                   drop_capabilities=linux.drop_capabilities))
    if linux.run_as_user is not None:
        sc.run_as_user.value = linux.run_as_user
    if linux.run_as_group is not None:
        sc.run_as_group.value = linux.run_as_group
    if linux.seccomp is not None:
        sc.seccomp.profile_type = pb.SecurityProfile.ProfileType.Value(linux.seccomp.profile_type)
        sc.seccomp.localhost_ref = linux.seccomp.localhost_ref
    ns = sc.namespace_options
    ns.network, ns.ipc = _mode(sandbox.host_network), _mode(sandbox.host_ipc)
    if linux.pid_target:
        ns.pid, ns.target_id = pb.TARGET, linux.pid_target
    else:
        ns.pid = _mode(sandbox.host_pid, pb.CONTAINER)
    return sc


def container_config(c: api.ContainerConfig, sandbox: api.PodSandboxConfig) -> pb.ContainerConfig:
    out = pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=c.metadata.name, attempt=c.metadata.attempt),
        image=pb.ImageSpec(image=c.image), command=c.command, args=c.args,
        working_dir=c.working_dir,
        # KeyValue.value is bytes in cri-api v0.36's proto (the same bytes on the wire)
        envs=[pb.KeyValue(key=k, value=v.encode()) for k, v in c.envs],
        mounts=[pb.Mount(container_path=m.container_path, host_path=m.host_path,
                         readonly=m.readonly,
                         propagation=_PROPAGATION.get(m.propagation, pb.PROPAGATION_PRIVATE))
                for m in c.mounts],
        labels=c.labels, annotations=c.annotations, log_path=c.log_path, stdin=c.stdin,
        stdin_once=c.stdin_once, tty=c.tty)
    out.linux.resources.CopyFrom(resources(c.linux.resources))
    if c.linux.oom_score_adj is not None:
        out.linux.resources.oom_score_adj = c.linux.oom_score_adj
    out.linux.security_context.CopyFrom(_security_context(c.linux, sandbox))
    return out
