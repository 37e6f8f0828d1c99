"""CRI v1 messages (cri.proto.api_pb2) to and from the runtime service's dataclasses (cri.api):
what pycontainer-cri's gRPC servicers hand to the RuntimeService and answer from it. A request
the service cannot express raises ConfigError naming the field (InvalidArgument)."""
from __future__ import annotations

from cri import api
from cri.proto import api_pb2 as pb

_PROPAGATION = {pb.PROPAGATION_PRIVATE: "private", pb.PROPAGATION_HOST_TO_CONTAINER: "rslave",
                pb.PROPAGATION_BIDIRECTIONAL: "rshared"}
_PROTOCOL = {pb.TCP: "TCP", pb.UDP: "UDP", pb.SCTP: "SCTP"}


class ConfigError(ValueError):
    """A request field the runtime cannot honour or that is missing; one line naming it."""


# -- requests ---------------------------------------------------------------------------------

def sandbox_config(config: pb.PodSandboxConfig) -> api.PodSandboxConfig:
    if not config.HasField("metadata"):
        raise ConfigError("sandbox config must include metadata")
    m = config.metadata
    if not m.name or not m.uid or not m.namespace:
        raise ConfigError("sandbox config metadata must include name, uid and namespace")
    ns = config.linux.security_context.namespace_options
    return api.PodSandboxConfig(
        metadata=api.PodSandboxMetadata(m.name, m.uid, m.namespace, m.attempt),
        hostname=config.hostname, log_directory=config.log_directory,
        labels=dict(config.labels), annotations=dict(config.annotations),
        host_network=ns.network == pb.NODE, host_ipc=ns.ipc == pb.NODE,
        host_pid=ns.pid == pb.NODE, cgroup_parent=config.linux.cgroup_parent,
        port_mappings=[api.PortMapping(p.container_port, p.host_port,
                                       _PROTOCOL.get(p.protocol, "TCP"), p.host_ip)
                       for p in config.port_mappings if p.host_port])


def resources(r: pb.LinuxContainerResources) -> dict:
    """The OCI linux.resources of CRI resources; zero values are unset, as containerd reads
    them."""
    out: dict = {}
    cpu = {k: v for k, v in (("period", r.cpu_period), ("quota", r.cpu_quota),
                             ("shares", r.cpu_shares), ("cpus", r.cpuset_cpus),
                             ("mems", r.cpuset_mems)) if v}
    if cpu:
        out["cpu"] = cpu
    memory = {k: v for k, v in (("limit", r.memory_limit_in_bytes),
                                ("swap", r.memory_swap_limit_in_bytes)) if v}
    if memory:
        out["memory"] = memory
    if r.hugepage_limits:
        out["hugepageLimits"] = [{"pageSize": h.page_size, "limit": h.limit}
                                 for h in r.hugepage_limits]
    if r.unified:
        out["unified"] = dict(r.unified)
    return out


def _seccomp(sc: pb.LinuxContainerSecurityContext) -> api.SecurityProfile | None:
    if sc.HasField("seccomp"):
        profile = sc.seccomp
        if profile.profile_type == pb.SecurityProfile.RuntimeDefault:
            return api.SecurityProfile("RuntimeDefault")
        if profile.profile_type == pb.SecurityProfile.Localhost:
            if not profile.localhost_ref:
                raise ConfigError("linux.security_context.seccomp.localhost_ref: required for "
                                  "a Localhost profile")
            return api.SecurityProfile("Localhost", profile.localhost_ref)
        return None
    # The deprecated field: "" or "unconfined" leave the container unconfined.
    path = sc.seccomp_profile_path
    if path in ("runtime/default", "docker/default"):
        return api.SecurityProfile("RuntimeDefault")
    if path.startswith("localhost/"):
        return api.SecurityProfile("Localhost", path[len("localhost/"):])
    return None


def container_config(config: pb.ContainerConfig,
                     sandbox: pb.PodSandboxConfig) -> api.ContainerConfig:
    if not config.HasField("metadata") or not config.metadata.name:
        raise ConfigError("container config must include metadata with a name")
    if not config.image.image:
        raise ConfigError("container config must include image.image")
    sc = config.linux.security_context
    linux = api.LinuxContainerConfig(
        resources=resources(config.linux.resources),
        oom_score_adj=config.linux.resources.oom_score_adj or None,
        run_as_user=sc.run_as_user.value if sc.HasField("run_as_user") else None,
        run_as_group=sc.run_as_group.value if sc.HasField("run_as_group") else None,
        supplemental_groups=list(sc.supplemental_groups), readonly_rootfs=sc.readonly_rootfs,
        no_new_privs=sc.no_new_privs, add_capabilities=list(sc.capabilities.add_capabilities),
        drop_capabilities=list(sc.capabilities.drop_capabilities), privileged=sc.privileged,
        sysctls=dict(sandbox.linux.sysctls), masked_paths=list(sc.masked_paths),
        readonly_paths=list(sc.readonly_paths), seccomp=_seccomp(sc),
        pid_target=sc.namespace_options.target_id
        if sc.namespace_options.pid == pb.TARGET else "")
    if sc.namespace_options.pid == pb.TARGET and not linux.pid_target:
        raise ConfigError("linux.security_context.namespace_options.target_id: required with "
                          "pid mode TARGET")
    if sc.privileged and not sandbox.linux.security_context.privileged:
        raise ConfigError("no privileged container allowed in sandbox")
    if sc.HasField("run_as_group") and not sc.HasField("run_as_user") \
            and not sc.run_as_username:
        # containerd's wording
        raise ConfigError(f'user group "{sc.run_as_group.value}" is specified without user')
    linux.run_as_username = "" if sc.HasField("run_as_user") else sc.run_as_username
    return api.ContainerConfig(
        metadata=api.ContainerMetadata(config.metadata.name, config.metadata.attempt),
        image=config.image.image, command=list(config.command), args=list(config.args),
        working_dir=config.working_dir, envs=_envs(config.envs),
        mounts=[api.Mount(m.container_path, m.host_path, m.readonly,
                          _PROPAGATION.get(m.propagation, "private")) for m in config.mounts],
        labels=dict(config.labels), annotations=dict(config.annotations),
        log_path=config.log_path, linux=linux, stdin=config.stdin,
        stdin_once=config.stdin_once, tty=config.tty)


def _envs(envs) -> list[tuple[str, str]]:
    """KeyValue.value is bytes in cri-api v0.36's proto; the OCI config holds text."""
    out = []
    for i, e in enumerate(envs):
        try:
            out.append((e.key, e.value.decode()))
        except UnicodeDecodeError:
            raise ConfigError(f"envs[{i}].value: {e.key} is not UTF-8") from None
    return out


# -- answers ----------------------------------------------------------------------------------

def _sandbox_metadata(m: api.PodSandboxMetadata) -> pb.PodSandboxMetadata:
    return pb.PodSandboxMetadata(name=m.name, uid=m.uid, namespace=m.namespace,
                                 attempt=m.attempt)


def sandbox(s: api.PodSandboxStatus, runtime_handler: str = "") -> pb.PodSandbox:
    return pb.PodSandbox(id=s.id, metadata=_sandbox_metadata(s.metadata),
                         state=pb.PodSandboxState.Value(s.state), created_at=s.created_at,
                         labels=s.labels, annotations=s.annotations,
                         runtime_handler=runtime_handler)


def sandbox_status(s: api.PodSandboxStatus, config: pb.PodSandboxConfig | None,
                   runtime_handler: str = "") -> pb.PodSandboxStatus:
    ns = config.linux.security_context.namespace_options if config is not None \
        else pb.NamespaceOption(network=pb.NODE if s.host_network else pb.POD)
    network = pb.PodSandboxNetworkStatus()
    if s.ips:
        network.ip = s.ips[0]
        network.additional_ips.extend(pb.PodIP(ip=ip) for ip in s.ips[1:])
    return pb.PodSandboxStatus(
        id=s.id, metadata=_sandbox_metadata(s.metadata),
        state=pb.PodSandboxState.Value(s.state), created_at=s.created_at, network=network,
        linux=pb.LinuxPodSandboxStatus(namespaces=pb.Namespace(options=pb.NamespaceOption(
            network=ns.network, pid=ns.pid, ipc=ns.ipc))),
        labels=s.labels, annotations=s.annotations, runtime_handler=runtime_handler)


def container(c: api.ContainerStatus, config: pb.ContainerConfig | None,
              image_id: str) -> pb.Container:
    """As containerd lists it: image_ref is the image's ID here (ContainerStatus has the repo
    digest)."""
    return pb.Container(
        id=c.id, pod_sandbox_id=c.pod_sandbox_id,
        metadata=pb.ContainerMetadata(name=c.metadata.name, attempt=c.metadata.attempt),
        image=_image_spec(c, config), image_ref=image_id or c.image_ref,
        state=pb.ContainerState.Value(c.state), created_at=c.created_at, labels=c.labels,
        annotations=c.annotations, image_id=image_id)


def _image_spec(c: api.ContainerStatus, config: pb.ContainerConfig | None) -> pb.ImageSpec:
    spec = pb.ImageSpec(image=c.image)
    if config is not None:
        spec.CopyFrom(config.image)
        spec.image = c.image
    return spec


def container_status(c: api.ContainerStatus, config: pb.ContainerConfig | None,
                     image_id: str) -> pb.ContainerStatus:
    """config: as created, with the resources of UpdateContainerResources since."""
    status = pb.ContainerStatus(
        id=c.id, metadata=pb.ContainerMetadata(name=c.metadata.name, attempt=c.metadata.attempt),
        state=pb.ContainerState.Value(c.state), created_at=c.created_at,
        started_at=c.started_at, finished_at=c.finished_at,
        exit_code=c.exit_code, image=_image_spec(c, config), image_ref=c.image_ref,
        reason=c.reason, message=c.message, labels=c.labels, annotations=c.annotations,
        log_path=c.log_path, image_id=image_id)
    if config is not None:
        status.mounts.extend(pb.Mount(container_path=m.container_path, host_path=m.host_path,
                                      readonly=m.readonly, propagation=m.propagation,
                                      selinux_relabel=m.selinux_relabel)
                             for m in config.mounts)
        status.resources.linux.CopyFrom(config.linux.resources)
    return status


def image(i: api.Image, pinned: bool = False) -> pb.Image:
    out = pb.Image(id=i.id, repo_tags=i.repo_tags, repo_digests=i.repo_digests, size=i.size,
                   username=i.username, spec=pb.ImageSpec(image=i.id), pinned=pinned)
    if i.uid is not None:
        out.uid.value = i.uid
    return out

