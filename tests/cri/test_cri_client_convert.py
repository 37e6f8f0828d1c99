"""cri/client's requests read back by pycontainer-cri's reader (cri.proto_convert): what the
kubelet asks for over a CRI socket is what the runtime service gets in process; and the
answers' statuses as the kubelet reads them."""
from __future__ import annotations

from cri import api, proto_convert
from cri.client import from_proto, to_proto
from cri.proto import api_pb2 as pb


def _sandbox(**extra: object) -> api.PodSandboxConfig:
    return api.PodSandboxConfig(
        metadata=api.PodSandboxMetadata("web", "uid-1", "ns", 2), hostname="web",
        log_directory="/var/log/pods/ns_web_uid-1", labels={"app": "web"},
        annotations={"a": "b"}, cgroup_parent="/pycontainer/kubepods/poduid-1",
        port_mappings=[api.PortMapping(8080, 30080, "UDP", "127.0.0.1")], **extra)


def test_sandbox_config_round_trip():
    sandbox = _sandbox(host_ipc=True)
    wire = to_proto.sandbox_config(sandbox)
    assert wire.linux.security_context.namespace_options.pid == pb.CONTAINER
    assert proto_convert.sandbox_config(wire) == sandbox


def test_sandbox_carries_sysctls_and_privileged():
    wire = to_proto.sandbox_config(_sandbox(sysctls={"net.ipv4.ip_local_port_range":
                                                     "32768 32999"}, privileged=True))
    assert dict(wire.linux.sysctls) == {"net.ipv4.ip_local_port_range": "32768 32999"}
    assert wire.linux.security_context.privileged


def test_container_config_round_trip():
    sysctls = {"kernel.shm_rmid_forced": "1"}
    sandbox = _sandbox(sysctls=sysctls, privileged=True)
    config = api.ContainerConfig(
        metadata=api.ContainerMetadata("c", 3), image="busybox:1.36", command=["sh", "-c"],
        args=["echo hi"], working_dir="/w", envs=[("A", "1"), ("B", "ü b")],
        mounts=[api.Mount("/data", "/host/data", True, "rslave"),
                api.Mount("/etc/hosts", "/k/hosts")],
        labels={"l": "1"}, annotations={"x": "y"}, log_path="c/3.log", stdin=True,
        stdin_once=True, tty=True,
        linux=api.LinuxContainerConfig(
            resources={"cpu": {"shares": 512, "quota": 50000, "period": 100000},
                       "memory": {"limit": 64 << 20}},
            oom_score_adj=1000, run_as_user=1000, run_as_group=3000,
            supplemental_groups=[4000], readonly_rootfs=True, no_new_privs=True,
            add_capabilities=["NET_ADMIN"], drop_capabilities=["ALL"], privileged=True,
            sysctls=sysctls, masked_paths=["/proc/kcore"], readonly_paths=["/proc/sys"],
            seccomp=api.SecurityProfile("Localhost", "/var/lib/kubelet/seccomp/p.json"),
            pid_target="abc123"))
    wire = to_proto.container_config(config, sandbox)
    assert proto_convert.container_config(wire, to_proto.sandbox_config(sandbox)) == config


def test_statuses_as_the_kubelet_reads_them():
    status = pb.ContainerStatus(
        id="c1", metadata=pb.ContainerMetadata(name="c", attempt=1),
        state=pb.CONTAINER_EXITED, created_at=1, started_at=2, finished_at=3, exit_code=3,
        image=pb.ImageSpec(image="docker.io/library/busybox:1.36"), image_ref="sha256:ab",
        reason="Error", log_path="/var/log/pods/x/c/1.log")
    got = from_proto.container_status(status, "s1")
    assert (got.pod_sandbox_id, got.state, got.exit_code, got.reason, got.log_path) == (
        "s1", api.CONTAINER_EXITED, 3, "Error", "/var/log/pods/x/c/1.log")
    sandbox = pb.PodSandboxStatus(
        id="s1", metadata=pb.PodSandboxMetadata(name="web", uid="u", namespace="ns"),
        state=pb.SANDBOX_READY, network=pb.PodSandboxNetworkStatus(
            ip="198.18.0.2", additional_ips=[pb.PodIP(ip="fd00::2")]))
    sandbox.linux.namespaces.options.network = pb.NODE
    got = from_proto.sandbox_status(sandbox)
    assert (got.ips, got.host_network, got.state) == (["198.18.0.2", "fd00::2"], True,
                                                      api.SANDBOX_READY)
    image = pb.Image(id="sha256:ab", repo_tags=["busybox:1.36"], size=5)
    image.uid.value = 0
    assert from_proto.image(image).uid == 0
    assert from_proto.image(pb.Image(id="x", username="www")).uid is None
