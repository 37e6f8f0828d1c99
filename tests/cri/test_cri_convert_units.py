"""cri.proto_convert, cri.etc_files and the gRPC layer's ID lookup without a daemon: CRI messages
to the runtime service's dataclasses and back, as containerd reads them."""
from __future__ import annotations

import grpc
import pytest

from cri import api, etc_files, proto_convert as convert
from cri.grpc_server import _Abort, _resolve
from cri.proto import api_pb2 as pb


def _sandbox(**linux) -> pb.PodSandboxConfig:
    return pb.PodSandboxConfig(metadata=pb.PodSandboxMetadata(name="p", uid="u", namespace="n"),
                               linux=pb.LinuxPodSandboxConfig(**linux))


def test_sandbox_config_namespaces_ports_and_cgroup():
    namespaces = pb.NamespaceOption(network=pb.NODE, pid=pb.NODE, ipc=pb.POD)
    config = _sandbox(cgroup_parent="/kubepods/pod1", security_context=pb.
                      LinuxSandboxSecurityContext(namespace_options=namespaces))
    config.port_mappings.extend([pb.PortMapping(container_port=80, host_port=8080,
                                                protocol=pb.UDP),
                                 pb.PortMapping(container_port=81)])    # no host port: none
    out = convert.sandbox_config(config)
    assert (out.host_network, out.host_pid, out.host_ipc) == (True, True, False)
    assert out.cgroup_parent == "/kubepods/pod1"
    assert out.port_mappings == [api.PortMapping(80, 8080, "UDP", "")]


def test_sandbox_config_needs_metadata():
    with pytest.raises(convert.ConfigError, match="metadata"):
        convert.sandbox_config(pb.PodSandboxConfig())


def test_resources_zero_is_unset():
    r = pb.LinuxContainerResources(cpu_period=100000, cpu_quota=50000, cpu_shares=512,
                                   memory_limit_in_bytes=1 << 26, cpuset_cpus="0")
    r.unified["memory.high"] = "1000000"
    assert convert.resources(r) == {
        "cpu": {"period": 100000, "quota": 50000, "shares": 512, "cpus": "0"},
        "memory": {"limit": 1 << 26}, "unified": {"memory.high": "1000000"}}
    assert convert.resources(pb.LinuxContainerResources()) == {}


def test_container_config_security_context():
    sc = pb.LinuxContainerSecurityContext(
        run_as_user=pb.Int64Value(value=0), readonly_rootfs=True, no_new_privs=True,
        capabilities=pb.Capability(add_capabilities=["NET_ADMIN"], drop_capabilities=["ALL"]),
        seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.Localhost,
                                   localhost_ref="/p.json"),
        namespace_options=pb.NamespaceOption(pid=pb.TARGET, target_id="abc"))
    config = pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name="c", attempt=2), image=pb.ImageSpec(image="busybox"),
        envs=[pb.KeyValue(key="A", value=b"1")], linux=pb.LinuxContainerConfig(security_context=sc),
        mounts=[pb.Mount(container_path="/v", host_path="/h",
                         propagation=pb.PROPAGATION_HOST_TO_CONTAINER)])
    sandbox = _sandbox(sysctls={"net.core.somaxconn": "1024"})
    out = convert.container_config(config, sandbox)
    assert out.linux.run_as_user == 0 and out.linux.run_as_group is None
    assert (out.linux.readonly_rootfs, out.linux.no_new_privs) == (True, True)
    assert out.linux.seccomp == api.SecurityProfile("Localhost", "/p.json")
    assert out.linux.pid_target == "abc"
    assert out.linux.sysctls == {"net.core.somaxconn": "1024"}
    assert out.envs == [("A", "1")]
    assert out.mounts == [api.Mount("/v", "/h", False, "rslave")]
    assert out.metadata == api.ContainerMetadata("c", 2)


@pytest.mark.parametrize("sc, message", [
    (pb.LinuxContainerSecurityContext(run_as_group=pb.Int64Value(value=3)),
     'user group "3" is specified without user'),
    (pb.LinuxContainerSecurityContext(privileged=True), "no privileged container allowed"),
    (pb.LinuxContainerSecurityContext(namespace_options=pb.NamespaceOption(pid=pb.TARGET)),
     "target_id"),
])
def test_container_config_refusals(sc, message):
    config = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="c"),
                                image=pb.ImageSpec(image="busybox"),
                                linux=pb.LinuxContainerConfig(security_context=sc))
    with pytest.raises(convert.ConfigError, match=message):
        convert.container_config(config, _sandbox())


def test_seccomp_unset_is_unconfined_and_deprecated_path_read():
    base = dict(metadata=pb.ContainerMetadata(name="c"), image=pb.ImageSpec(image="b"))
    assert convert.container_config(pb.ContainerConfig(**base), _sandbox()).linux.seccomp is None
    old = pb.ContainerConfig(**base, linux=pb.LinuxContainerConfig(
        security_context=pb.LinuxContainerSecurityContext(
            seccomp_profile_path="runtime/default")))
    assert convert.container_config(old, _sandbox()).linux.seccomp == \
        api.SecurityProfile("RuntimeDefault")


def test_status_answers():
    status = api.PodSandboxStatus(id="s1", metadata=api.PodSandboxMetadata("p", "u", "n", 1),
                                  state=api.SANDBOX_READY, created_at=5,
                                  ips=["198.18.0.2", "fd00::2"], labels={"a": "b"})
    out = convert.sandbox_status(status, None, "")
    assert (out.network.ip, [i.ip for i in out.network.additional_ips]) == \
        ("198.18.0.2", ["fd00::2"])
    assert out.state == pb.SANDBOX_READY and out.labels == {"a": "b"}
    c = api.ContainerStatus(id="c1", pod_sandbox_id="s1", metadata=api.ContainerMetadata("c"),
                            state=api.CONTAINER_EXITED, exit_code=3, reason="Error",
                            image="docker.io/library/busybox:1.36", image_ref="x@sha256:1")
    config = pb.ContainerConfig(linux=pb.LinuxContainerConfig(
        resources=pb.LinuxContainerResources(cpu_shares=2)))
    out = convert.container_status(c, config, "sha256:abc")
    assert (out.state, out.exit_code, out.image_id) == (pb.CONTAINER_EXITED, 3, "sha256:abc")
    assert out.resources.linux.cpu_shares == 2
    assert out.image.image == "docker.io/library/busybox:1.36"


def test_resolv_conf_as_containerd_writes_it():
    dns = pb.DNSConfig(servers=["10.0.0.10", "10.0.0.11"], searches=["a.svc", "svc"],
                       options=["ndots:5"])
    assert etc_files.resolv_conf(dns) == \
        "search a.svc svc\nnameserver 10.0.0.10\nnameserver 10.0.0.11\noptions ndots:5\n"


def test_etc_mounts_skip_what_the_container_mounts(tmp_path):
    for name in etc_files.FILES:
        (tmp_path / name).write_text("x")
    config = api.ContainerConfig(metadata=api.ContainerMetadata("c"), image="b",
                                 mounts=[api.Mount("/etc/hosts", "/elsewhere")])
    config.linux.readonly_rootfs = True
    mounts = etc_files.mounts(str(tmp_path), config)
    assert [(m.container_path, m.readonly) for m in mounts] == \
        [("/etc/hostname", True), ("/etc/resolv.conf", True)]


def test_ids_by_unique_prefix():
    ids = ["abc123", "abd456"]
    assert _resolve(ids, "abc", "container") == "abc123"
    with pytest.raises(_Abort):
        _resolve(ids, "ab", "container")
    with pytest.raises(api.NotFound):
        _resolve(ids, "zzz", "container")
    with pytest.raises(_Abort) as e:
        _resolve(ids, "", "container")
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
