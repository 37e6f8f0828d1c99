"""pycontainer-cri over gRPC with the generated stubs: Version, Status, RuntimeConfig, the status
codes containerd answers (NotFound, InvalidArgument), GetContainerEvents streamed, the streaming
URLs' validation, UpdateContainerResources, and the daemon's one-line refusal of bad flags."""
from __future__ import annotations

import json
import os
import queue
import subprocess
import threading

import grpc
import pytest

from cri.proto import api_pb2 as pb, api_pb2_grpc as pb_grpc
from cri_testlib import wait_for
from testlib.cri_daemon import IMAGE, PYCONTAINER_CRI
from netkit import unique

pytestmark = [pytest.mark.root, pytest.mark.slow]


@pytest.fixture(scope="module")
def cri_stubs(cri_daemon):
    channel = grpc.insecure_channel(cri_daemon.endpoint)
    try:
        yield pb_grpc.RuntimeServiceStub(channel), pb_grpc.ImageServiceStub(channel)
    finally:
        channel.close()


def _pod_config(daemon, name: str) -> pb.PodSandboxConfig:
    return pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=unique("uid"), namespace="pcri"),
        log_directory=os.path.join(daemon.logs, name),
        linux=pb.LinuxPodSandboxConfig(cgroup_parent=daemon.cgroup_parent))


@pytest.fixture
def cri_sandbox(cri_daemon, cri_stubs):
    runtime, _ = cri_stubs
    config = _pod_config(cri_daemon, unique("g"))
    sandbox = runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id
    try:
        yield sandbox, config
    finally:
        runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sandbox))
        runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox))


def _create(runtime, sandbox: str, config: pb.PodSandboxConfig, name: str,
            command: list[str], **extra) -> str:
    return runtime.CreateContainer(pb.CreateContainerRequest(
        pod_sandbox_id=sandbox, sandbox_config=config,
        config=pb.ContainerConfig(metadata=pb.ContainerMetadata(name=name),
                                  image=pb.ImageSpec(image=IMAGE), command=command,
                                  log_path=f"{name}.log", **extra))).container_id


def _code(call, request) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as e:
        call(request)
    return e.value.code()


def test_version_status_runtime_config(cri_stubs):
    runtime, _ = cri_stubs
    version = runtime.Version(pb.VersionRequest(version="v1"))
    assert (version.runtime_name, version.runtime_api_version) == ("pycontainer", "v1")
    conditions = {c.type: c.status for c in runtime.Status(pb.StatusRequest()).status.conditions}
    assert conditions == {"RuntimeReady": True, "NetworkReady": True}
    verbose = runtime.Status(pb.StatusRequest(verbose=True))
    assert "cgroupfs" in verbose.info["config"]
    assert runtime.RuntimeConfig(pb.RuntimeConfigRequest()).linux.cgroup_driver == pb.CGROUPFS


def test_status_codes_as_containerd(cri_stubs):
    runtime, images = cri_stubs
    missing = "0" * 64
    assert _code(runtime.PodSandboxStatus,
                 pb.PodSandboxStatusRequest(pod_sandbox_id=missing)) == grpc.StatusCode.NOT_FOUND
    assert _code(runtime.ContainerStatus,
                 pb.ContainerStatusRequest(container_id=missing)) == grpc.StatusCode.NOT_FOUND
    assert _code(runtime.StartContainer,
                 pb.StartContainerRequest(container_id=missing)) == grpc.StatusCode.NOT_FOUND
    assert _code(runtime.CreateContainer, pb.CreateContainerRequest(pod_sandbox_id=missing)) \
        == grpc.StatusCode.NOT_FOUND
    # Removing or stopping what is gone is no error (the kubelet retries them).
    runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=missing))
    runtime.StopContainer(pb.StopContainerRequest(container_id=missing))
    assert _code(runtime.RunPodSandbox, pb.RunPodSandboxRequest(config=pb.PodSandboxConfig())) \
        == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as e:
        runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=pb.PodSandboxConfig(),
                                                      runtime_handler="kata"))
    assert (e.value.code(), e.value.details()) == \
        (grpc.StatusCode.UNKNOWN, 'no runtime for "kata" is configured')
    assert _code(images.PullImage, pb.PullImageRequest(image=pb.ImageSpec(image="Bad//Ref"))) \
        == grpc.StatusCode.INVALID_ARGUMENT
    assert not images.ImageStatus(pb.ImageStatusRequest(
        image=pb.ImageSpec(image="example.invalid/none:1"))).HasField("image")
    # CheckpointContainer is Unimplemented in containerd 1.6 too.
    assert _code(runtime.CheckpointContainer,
                 pb.CheckpointContainerRequest(container_id=missing)) \
        == grpc.StatusCode.UNIMPLEMENTED


def test_bad_container_configs(cri_stubs, cri_sandbox):
    runtime, _ = cri_stubs
    sandbox, config = cri_sandbox
    no_image = pb.CreateContainerRequest(pod_sandbox_id=sandbox, sandbox_config=config,
                                         config=pb.ContainerConfig(
                                             metadata=pb.ContainerMetadata(name="x")))
    assert _code(runtime.CreateContainer, no_image) == grpc.StatusCode.INVALID_ARGUMENT
    group_only = pb.CreateContainerRequest(
        pod_sandbox_id=sandbox, sandbox_config=config, config=pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name="x"), image=pb.ImageSpec(image=IMAGE),
            linux=pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(
                run_as_group=pb.Int64Value(value=5)))))
    with pytest.raises(grpc.RpcError) as e:
        runtime.CreateContainer(group_only)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details() == 'user group "5" is specified without user'
    unknown_image = pb.CreateContainerRequest(
        pod_sandbox_id=sandbox, sandbox_config=config, config=pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name="y"),
            image=pb.ImageSpec(image="example.invalid/none:1")))
    assert _code(runtime.CreateContainer, unknown_image) == grpc.StatusCode.NOT_FOUND
    # Nothing of the refused containers remains.
    listed = runtime.ListContainers(pb.ListContainersRequest(
        filter=pb.ContainerFilter(pod_sandbox_id=sandbox)))
    assert list(listed.containers) == []


def test_container_events_are_streamed(cri_stubs, cri_sandbox):
    runtime, _ = cri_stubs
    sandbox, config = cri_sandbox
    events: queue.Queue = queue.Queue()
    stream = runtime.GetContainerEvents(pb.GetEventsRequest())

    def pump() -> None:
        try:
            for event in stream:
                events.put(event)
        except grpc.RpcError:
            pass    # cancelled at the end of the test
    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        # The subscription exists once a first event arrives: probe until one comes.
        def probe() -> bool:
            probe_id = _create(runtime, sandbox, config, unique("probe"), ["true"])
            runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=probe_id))
            try:
                events.get(timeout=0.5)
                return True
            except queue.Empty:
                return False
        wait_for(probe, what="the event stream's first event")
        container = _create(runtime, sandbox, config, "evented", ["sh", "-c", "exit 0"])
        runtime.StartContainer(pb.StartContainerRequest(container_id=container))
        wait_for(lambda: runtime.ContainerStatus(pb.ContainerStatusRequest(
            container_id=container)).status.state == pb.CONTAINER_EXITED,
            what="the container's exit")
        runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=container))
        seen = []
        while len(seen) < 4:
            event = events.get(timeout=30)
            if event.container_id == container:
                seen.append(event.container_event_type)
        assert seen == [pb.CONTAINER_CREATED_EVENT, pb.CONTAINER_STARTED_EVENT,
                        pb.CONTAINER_STOPPED_EVENT, pb.CONTAINER_DELETED_EVENT]
    finally:
        stream.cancel()
        reader.join(10)


def test_streaming_requests_validated_and_urls_single_use(cri_stubs, cri_sandbox):
    runtime, _ = cri_stubs
    sandbox, config = cri_sandbox
    container = _create(runtime, sandbox, config, "streamed", ["sleep", "3600"])
    runtime.StartContainer(pb.StartContainerRequest(container_id=container))
    assert _code(runtime.Exec, pb.ExecRequest(container_id=container, cmd=["true"])) \
        == grpc.StatusCode.INVALID_ARGUMENT
    assert _code(runtime.Exec, pb.ExecRequest(container_id=container, cmd=["true"], tty=True,
                                              stdout=True, stderr=True)) \
        == grpc.StatusCode.INVALID_ARGUMENT
    url = runtime.Exec(pb.ExecRequest(container_id=container, cmd=["true"], stdout=True)).url
    assert url.startswith("http://127.0.0.1:") and "/exec/" in url
    import urllib.error
    import urllib.request
    # A plain GET is no upgrade: 400, and the token is spent.
    for expected in (400, 404):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(url, timeout=10)
        assert e.value.code == expected
    assert "/portforward/" in runtime.PortForward(
        pb.PortForwardRequest(pod_sandbox_id=sandbox, port=[80])).url


def test_update_container_resources(cri_daemon, cri_stubs, cri_sandbox):
    runtime, _ = cri_stubs
    sandbox, config = cri_sandbox
    container = _create(runtime, sandbox, config, "limited", ["sleep", "3600"],
                        linux=pb.LinuxContainerConfig(resources=pb.LinuxContainerResources(
                            memory_limit_in_bytes=64 << 20)))
    runtime.StartContainer(pb.StartContainerRequest(container_id=container))
    runtime.UpdateContainerResources(pb.UpdateContainerResourcesRequest(
        container_id=container, linux=pb.LinuxContainerResources(
            memory_limit_in_bytes=96 << 20, cpu_shares=512)))
    status = runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=container)).status
    assert status.resources.linux.memory_limit_in_bytes == 96 << 20
    assert status.resources.linux.cpu_shares == 512
    import cgroups
    path = f"{cri_daemon.cgroup_parent}/{container}"
    dirs = cgroups.open_cgroup(path).hierarchy_dirs()
    limit_file = os.path.join(dirs["memory"], "memory.limit_in_bytes") if "memory" in dirs \
        else os.path.join(dirs[""], "memory.max")
    with open(limit_file) as f:
        assert int(f.read()) == 96 << 20


def test_bad_flags_one_line(tmp_path):
    p = subprocess.run([PYCONTAINER_CRI, "--listen", "relative.sock"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 2
    assert p.stderr == "pycontainer-cri: --listen: 'relative.sock' must be " \
                       "unix:///path/to/socket\n"
    p = subprocess.run([PYCONTAINER_CRI, "--listen", f"unix://{tmp_path}/s.sock", "--state",
                        "state"], capture_output=True, text=True, timeout=30)
    assert (p.returncode, p.stderr) == (2, "pycontainer-cri: --state: 'state' must be an "
                                           "absolute path\n")
    assert os.listdir(tmp_path) == []


def test_reopen_container_log(cri_daemon, cri_stubs, cri_sandbox):
    runtime, _ = cri_stubs
    sandbox, config = cri_sandbox
    container = _create(runtime, sandbox, config, "logger",
                        ["sh", "-c", "while true; do echo tick; sleep 0.2; done"])
    runtime.StartContainer(pb.StartContainerRequest(container_id=container))
    log = runtime.ContainerStatus(pb.ContainerStatusRequest(
        container_id=container)).status.log_path
    wait_for(lambda: os.path.exists(log) and os.path.getsize(log) > 0, what="the first line")
    os.rename(log, log + ".1")      # as the kubelet's log rotation does
    runtime.ReopenContainerLog(pb.ReopenContainerLogRequest(container_id=container))
    wait_for(lambda: os.path.exists(log) and b"tick" in open(log, "rb").read(),
             what="lines in the reopened log")
    assert b" stdout F tick" in open(log + ".1", "rb").read()


def test_images_fs_info_and_filter(cri_stubs, cri_image_root):
    _, images = cri_stubs
    fs = images.ImageFsInfo(pb.ImageFsInfoRequest()).image_filesystems
    assert [f.fs_id.mountpoint for f in fs] == [cri_image_root]
    assert fs[0].used_bytes.value > 1 << 20 and fs[0].inodes_used.value > 10
    listed = images.ListImages(pb.ListImagesRequest(filter=pb.ImageFilter(
        image=pb.ImageSpec(image=IMAGE)))).images
    assert [list(i.repo_tags) for i in listed] == [["docker.io/library/busybox:1.36"]]
    by_id = images.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=listed[0].id[:19]),
                                                     verbose=True))
    assert by_id.image.id == listed[0].id and "repoDigests" in by_id.info["info"]


def test_names_reserved_as_containerd(cri_stubs, cri_sandbox):
    runtime, _ = cri_stubs
    sandbox, config = cri_sandbox
    with pytest.raises(grpc.RpcError) as e:
        runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config))
    m = config.metadata
    name = f"{m.name}_{m.namespace}_{m.uid}_0"
    assert e.value.details() == f'failed to reserve sandbox name "{name}": name "{name}" is ' \
                                f'reserved for "{sandbox}"'
    first = _create(runtime, sandbox, config, "twin", ["sleep", "1"])
    with pytest.raises(grpc.RpcError) as e:
        _create(runtime, sandbox, config, "twin", ["sleep", "1"])
    assert e.value.details().endswith(f'is reserved for "{first}"')


def test_pod_shared_pid_namespace(cri_daemon, cri_stubs):
    """pid mode POD (crictl's default, the kubelet's shareProcessNamespace): the pod's containers
    share one PID namespace whose PID 1 is its holder (named pause), gone with the sandbox."""
    runtime, _ = cri_stubs
    config = _pod_config(cri_daemon, unique("shared"))
    sandbox = runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id
    try:
        first = _create(runtime, sandbox, config, "first", ["sleep", "3600"])
        second = _create(runtime, sandbox, config, "second", ["sleep", "3601"])
        for c in (first, second):
            runtime.StartContainer(pb.StartContainerRequest(container_id=c))
        seen = runtime.ExecSync(pb.ExecSyncRequest(container_id=second, cmd=[
            "sh", "-c", "cat /proc/1/cmdline; echo; ps -o args"], timeout=10)).stdout.decode()
        assert seen.startswith(os.path.join(cri_daemon.state, "sandboxes", sandbox, "pause"))
        assert "sleep 3600" in seen and "sleep 3601" in seen
        info = json.loads(runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(
            pod_sandbox_id=sandbox, verbose=True)).info["info"])
        holder = info["pid"]
        assert holder > 0 and os.path.exists(f"/proc/{holder}")
        # A container of pid mode CONTAINER in the same pod has its own.
        context = pb.LinuxContainerSecurityContext(
            namespace_options=pb.NamespaceOption(pid=pb.CONTAINER))
        own = _create(runtime, sandbox, config, "own", ["sleep", "3602"],
                      linux=pb.LinuxContainerConfig(security_context=context))
        runtime.StartContainer(pb.StartContainerRequest(container_id=own))
        alone = runtime.ExecSync(pb.ExecSyncRequest(container_id=own, cmd=["ps", "-o", "args"],
                                                    timeout=10)).stdout.decode()
        assert "sleep 3600" not in alone and "sleep 3602" in alone
    finally:
        runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sandbox))
        runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox))
    wait_for(lambda: not os.path.exists(f"/proc/{holder}"), what="the holder's end")
