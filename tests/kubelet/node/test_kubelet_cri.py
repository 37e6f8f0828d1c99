"""The CRI-like runtime service on its own (in this process, as the kubelet drives it):
sandboxes with a pod IP and pinned IPC/UTS namespaces that their containers share, containers
through create/start/exec/stop(timeout)/remove, exit events, and bad input that fails with one
line and leaves nothing behind."""
from __future__ import annotations

import os
import threading
import time

import pytest

from cri.api import (CONTAINER_CREATED, CONTAINER_EXITED, CONTAINER_RUNNING, SANDBOX_NOTREADY,
                     SANDBOX_READY, ContainerConfig, ContainerMetadata, CRIError, ImageNotFound,
                     PodSandboxConfig, PodSandboxMetadata)
from cri.images import Images
from cri.service import PycontainerRuntime
from kubelet_testlib import BIN, IMAGE, KubeletProcess, wait_for

pytestmark = pytest.mark.root


class Cri:
    """A runtime service over a KubeletProcess's directories (never started: no kubelet runs,
    this test is the kubelet)."""

    def __init__(self, k: KubeletProcess) -> None:
        self.k = k
        self.runtime = PycontainerRuntime(k.root, Images(k.image_root), k.cni_conf,
                                          [BIN, "/usr/lib/cni"], os.path.join(k.dir, "cni-cache"))

    def sandbox_config(self, name: str = "pod", uid: str = "uid-1") -> PodSandboxConfig:
        return PodSandboxConfig(PodSandboxMetadata(name, uid, "ns"), hostname=name,
                                log_directory=os.path.join(self.k.pod_logs, f"ns_{name}_{uid}"),
                                cgroup_parent=f"{self.k.cgroup_root}/kubepods/pod{uid}")

    def container(self, name: str, command: str, **kw) -> ContainerConfig:
        return ContainerConfig(ContainerMetadata(name), IMAGE, command=["sh", "-c", command],
                               log_path=f"{name}/0.log", **kw)

    def left(self) -> dict:
        root = self.k.root
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split()[4] for line in f if f" {root}/" in line]
        return {"mounts": [m for m in mounts if m not in (f"{root}/netns", f"{root}/sandboxes")],
                "sandboxes": os.listdir(os.path.join(root, "sandboxes")),
                "containers": os.listdir(os.path.join(root, "containers")),
                "netns": os.listdir(os.path.join(root, "netns"))
                if os.path.isdir(os.path.join(root, "netns")) else []}


@pytest.fixture
def cri(api_server, nodes, image_root):
    name, token = nodes.take()
    k = KubeletProcess(api_server, name, token, image_root)
    c = Cri(k)
    try:
        yield c
    finally:
        try:
            c.runtime.close()
        finally:
            k.cleanup()  # also when closing failed: it removes what the test made


def test_sandbox_and_its_containers(cri):
    rt = cri.runtime
    events = []
    rt.subscribe(events.append)
    config = cri.sandbox_config()
    sandbox_id = rt.run_pod_sandbox(config)
    status = rt.pod_sandbox_status(sandbox_id)
    assert status.state == SANDBOX_READY and len(status.ips) == 1
    assert os.path.exists(status.netns_path)
    first = rt.create_container(sandbox_id, cri.container(
        "first", "echo shared > /dev/shm/note; trap '' TERM; exec sleep 1000"), config)
    assert rt.container_status(first).state == CONTAINER_CREATED
    rt.start_container(first)
    second = rt.create_container(sandbox_id, cri.container("second", "exec sleep 1000"), config)
    rt.start_container(second)
    assert {c.state for c in rt.list_containers(pod_uid="uid-1")} == {CONTAINER_RUNNING}

    def both(cmd: list[str]) -> tuple[str, str]:
        return tuple(rt.exec_sync(c, cmd, 5).stdout for c in (first, second))
    # One network, one hostname, one IPC namespace and /dev/shm; each its own PID namespace.
    mac1, mac2 = both(["cat", "/sys/class/net/eth0/address"])
    assert mac1 == mac2 and mac1.strip()
    assert both(["hostname"]) == ("pod\n", "pod\n")
    assert both(["readlink", "/proc/1/ns/ipc"])[0] == both(["readlink", "/proc/1/ns/ipc"])[1]
    assert wait_for(lambda: rt.exec_sync(second, ["cat", "/dev/shm/note"], 5).stdout) == \
        "shared\n"
    assert both(["cat", "/proc/1/cmdline"]) == ("sleep\x001000\x00", "sleep\x001000\x00")
    result = rt.exec_sync(second, ["sh", "-c", "echo out; echo err >&2; exit 4"], 5)
    assert (result.exit_code, result.stdout, result.stderr) == (4, "out\n", "err\n")
    # StopContainer(timeout): the first ignores TERM and is killed when the timeout ends.
    start = time.monotonic()
    rt.stop_container(first, 1)
    took = time.monotonic() - start
    st = rt.container_status(first)
    # killed, and not before its timeout (a lower bound only: a loaded machine is slower)
    assert (st.state, st.exit_code) == (CONTAINER_EXITED, 137) and took >= 0.9
    assert [e.container_id for e in events] == [first]
    with open(st.log_path) as f:
        assert f.read() == ""
    # The sandbox stops with its containers and goes with them.
    rt.stop_pod_sandbox(sandbox_id)
    assert rt.pod_sandbox_status(sandbox_id).state == SANDBOX_NOTREADY
    assert rt.container_status(second).state == CONTAINER_EXITED
    rt.remove_pod_sandbox(sandbox_id)
    assert rt.list_pod_sandboxes() == [] and rt.list_containers() == []
    assert cri.left() == {"mounts": [], "sandboxes": [], "containers": [], "netns": []}


def test_bad_input_fails_in_one_line_and_leaves_nothing(cri):
    rt = cri.runtime
    config = cri.sandbox_config()
    sandbox_id = rt.run_pod_sandbox(config)
    before = cri.left()
    with pytest.raises(ImageNotFound, match="busybox:0.0: not in the store"):
        rt.create_container(sandbox_id, ContainerConfig(ContainerMetadata("c"), "busybox:0.0",
                                                        command=["true"]), config)
    assert cri.left() == before
    # A start the runtime refuses: the runtime's own line, kept as the container's status.
    c = rt.create_container(sandbox_id, ContainerConfig(ContainerMetadata("c"), IMAGE,
                                                        command=["/bin/nope"]), config)
    with pytest.raises(CRIError) as failure:
        rt.start_container(c)
    assert str(failure.value) == \
        "process.args[0]: executable /bin/nope not found in the container"
    st = rt.container_status(c)
    assert (st.state, st.exit_code, st.reason, st.message) == (
        CONTAINER_EXITED, 128, "StartError", str(failure.value))
    rt.remove_container(c)
    assert cri.left() == before
    rt.remove_pod_sandbox(sandbox_id)
    # A sandbox without a network configuration to join: refused before anything exists.
    os.unlink(os.path.join(cri.k.cni_conf, "10-kt.conflist"))
    with pytest.raises(CRIError, match="network plugin not ready"):
        rt.run_pod_sandbox(cri.sandbox_config("nonet", "uid-2"))
    assert cri.left() == {"mounts": [], "sandboxes": [], "containers": [], "netns": []}


def test_exit_events_and_adoption_by_a_new_runtime(cri):
    rt = cri.runtime
    config = cri.sandbox_config()
    sandbox_id = rt.run_pod_sandbox(config)
    # The container ends when told, through the pod's /dev/shm (a directory on the host): a
    # fixed sleep could run out before the adoption is checked on a loaded machine.
    c = rt.create_container(sandbox_id, cri.container(
        "c", "while [ ! -e /dev/shm/end ]; do sleep 0.1; done; exit 7"), config)
    rt.start_container(c)
    # A second runtime service over the same root (a restarted kubelet) adopts the container
    # and learns how it ended.
    rt.close()
    cri.runtime = rt = Cri(cri.k).runtime
    seen = threading.Event()
    rt.subscribe(lambda e: seen.set())
    rt.adopt()
    assert rt.container_status(c).state == CONTAINER_RUNNING
    with open(os.path.join(cri.k.root, "sandboxes", sandbox_id, "shm", "end"), "w"):
        pass
    assert seen.wait(10)
    st = rt.container_status(c)
    assert (st.state, st.exit_code, st.reason) == (CONTAINER_EXITED, 7, "Error")
    rt.remove_pod_sandbox(sandbox_id)


def test_image_service_on_the_store_of_pycontainer_image(tmp_path):
    from testlib.images import make_image_store

    images = Images(make_image_store(str(tmp_path)))
    image = images.image_status(IMAGE)
    assert image.repo_tags == ["docker.io/library/busybox:1.36"] and image.size > 1 << 20
    assert image.repo_digests[0].startswith("docker.io/library/busybox@sha256:")
    assert images.image_status("busybox:9.9") is None
    with pytest.raises(CRIError, match="127.0.0.1:9"):
        images.pull_image("127.0.0.1:9/nothing:1")
    images.remove_image(IMAGE)
    assert images.image_status(IMAGE) is None and images.list_images() == []
