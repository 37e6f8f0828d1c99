"""The kubelet's pod sync, kill, status and garbage collection against the in-memory CRI fake
(cri.fake): which runtime verbs a sync calls and in what order, the reasons and back-offs a pod
shows, without root, a shim or a network. The runtime's own behaviour is tested for real in
test_kubelet_cri.py."""
from __future__ import annotations

import pytest

from cri.api import (CONTAINER_EXITED, CONTAINER_RUNNING, SANDBOX_NOTREADY, SANDBOX_READY,
                     ExecResult)
from cri.fake import FakeRuntime
from kubelet.config_objects import ConfigObjects
from kubelet.gc import GarbageCollector
from kubelet.pod_runtime import PodRuntime
from kubelet.pods import Pod
from kubelet.status import pod_status
from kubelet.sync.backoff import Backoff
from kubelet.sync.etc_files import PodEtcFiles
from kubelet.sync.security_context import SeccompSettings
from kubelet.sync.syncer import ERROR_RETRY, PULL_FAILURE_RESYNC, PodSyncer
from kubelet.volumes.manager import Volumes

IMAGE = "busybox:1.36"
UID = "uid-1"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class PodCgroupsStandIn:
    """Pod cgroups by name only: making real ones needs root, and they are not under test."""

    def __init__(self) -> None:
        self.made: set[str] = set()

    def parent_of(self, pod: Pod) -> str:
        return f"/pycontainer/kubepods/pod{pod.uid}"

    def ensure(self, pod: Pod) -> None:
        self.made.add(pod.uid)

    def destroy(self, pod_uid: str) -> None:
        self.made.discard(pod_uid)

    def pod_uids(self) -> list[str]:
        return sorted(self.made)


class Events:
    """What the kubelet would post as Events: (reason, message) in order."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, str]] = []

    def pod(self, pod: Pod, kind: str, reason: str, message: str,
            container: str | None = None) -> None:
        self.posted.append((reason, message))

    def reasons(self) -> list[str]:
        return [reason for reason, _ in self.posted]


class Node:
    def __init__(self, tmp_path, **fake) -> None:
        self.clock = Clock()
        self.cri = FakeRuntime(clock=self.clock, **fake)
        self.cgroups = PodCgroupsStandIn()
        self.events = Events()
        root = str(tmp_path / "root")
        self.syncer = PodSyncer(
            self.cri, self.cri, self.cgroups, str(tmp_path / "pods"),
            Volumes(root, ConfigObjects(None), 2, 1 << 30), "192.0.2.10", self.events,
            PodEtcFiles(root, "/etc/resolv.conf", [], "cluster.local"), 1 << 30,
            SeccompSettings(str(tmp_path / "seccomp")))
        self.syncer.backoff = Backoff(clock=self.clock)
        self.syncer.image_backoff = Backoff(clock=self.clock)

    def runtime(self, uid: str = UID) -> PodRuntime:
        return PodRuntime.read(self.cri, uid)

    def status(self, pod: Pod) -> dict:
        return pod_status.generate(pod, self.runtime(pod.uid), {},
                                   self.syncer.reasons(pod.uid), "192.0.2.10",
                                   False)

    def running(self, name: str = "c") -> str:
        latest = self.runtime().latest(name)
        assert latest is not None and latest.state == CONTAINER_RUNNING
        return latest.id


def make_pod(policy: str = "Always", image: str = IMAGE, pull: str = "IfNotPresent",
             uid: str = UID, name: str = "p") -> Pod:
    return Pod({"metadata": {"name": name, "namespace": "ns", "uid": uid},
                "spec": {"restartPolicy": policy, "containers": [
                    {"name": "c", "image": image, "imagePullPolicy": pull,
                     "command": ["sh", "-c", "exit 1"]}]}})


def waiting(status: dict) -> dict:
    return status["containerStatuses"][0]["state"]["waiting"]


def test_a_new_pod_gets_its_sandbox_then_its_image_then_its_container(tmp_path):
    node = Node(tmp_path)
    pod = make_pod()
    assert node.syncer.sync(pod) is None
    assert node.cri.verbs() == ["run_pod_sandbox", "pull_image", "create_container",
                                "start_container"]
    assert node.events.reasons() == ["Pulling", "Pulled", "Created", "Started"]
    assert node.cgroups.made == {UID}
    status = node.status(pod)
    assert status["phase"] == "Running" and status["podIP"] == node.cri.pod_ip
    assert "running" in status["containerStatuses"][0]["state"]
    # nothing to do on the next sync: no verb that changes anything
    node.cri.calls.clear()
    assert node.syncer.sync(pod) is None
    assert node.cri.verbs() == []


def test_an_image_in_the_store_is_not_pulled_and_never_means_never(tmp_path):
    node = Node(tmp_path, images=(IMAGE,))
    node.syncer.sync(make_pod())
    assert "pull_image" not in node.cri.verbs()
    assert ("Pulled", f'Container image "{IMAGE}" already present on machine') \
        in node.events.posted
    absent = make_pod(image="busybox:absent", pull="Never", uid="uid-2", name="q")
    assert node.syncer.sync(absent) == ERROR_RETRY
    assert waiting(node.status(absent)) == {
        "reason": "ErrImageNeverPull",
        "message": 'Container image "busybox:absent" is not present with pull policy of Never'}
    assert node.cri.verbs().count("create_container") == 1     # the first pod's only


def test_a_crashing_container_restarts_at_once_then_backs_off_doubling(tmp_path):
    node = Node(tmp_path, images=(IMAGE,))
    pod = make_pod()
    node.syncer.sync(pod)
    node.cri.exit(node.running(), 1)
    assert node.syncer.sync(pod) is None                  # the first failure costs nothing
    assert node.cri.verbs().count("start_container") == 2
    for delay in (10, 20):
        node.cri.exit(node.running(), 1)
        assert node.syncer.sync(pod) == delay
        assert waiting(node.status(pod)) == {
            "reason": "CrashLoopBackOff",
            "message": f"back-off {delay}s restarting failed container=c pod=p_ns({UID})"}
        node.clock.now += delay
        assert node.syncer.sync(pod) is None
    assert node.cri.verbs().count("start_container") == 4
    assert node.runtime().restart_count("c") == 3


def test_a_failed_pull_shows_err_image_pull_then_image_pull_back_off(tmp_path):
    node = Node(tmp_path, unpullable=("busybox:gone",))
    pod = make_pod(image="busybox:gone")
    assert node.syncer.sync(pod) == PULL_FAILURE_RESYNC
    assert waiting(node.status(pod))["reason"] == "ErrImagePull"
    node.cri.calls.clear()
    assert node.syncer.sync(pod) == 10
    assert waiting(node.status(pod)) == {"reason": "ImagePullBackOff",
                                         "message": 'Back-off pulling image "busybox:gone"'}
    assert node.cri.verbs() == []                        # no pull while it backs off
    node.clock.now += 10
    node.syncer.sync(pod)
    assert node.cri.verbs() == ["pull_image"]


def test_a_container_the_runtime_cannot_create_waits_in_its_sandbox(tmp_path):
    node = Node(tmp_path, images=(IMAGE,))
    pod = make_pod()
    node.cri.fail("create_container", "no space left on device")
    assert node.syncer.sync(pod) == ERROR_RETRY
    assert waiting(node.status(pod)) == {"reason": "CreateContainerError",
                                         "message": "no space left on device"}
    assert ("Failed", "no space left on device") in node.events.posted
    assert node.syncer.sync(pod) is None
    assert node.cri.verbs().count("run_pod_sandbox") == 1  # the same sandbox, used again
    node.running()
    assert "c" not in node.syncer.reasons(UID)


def test_a_sandbox_that_fails_is_retried_and_nothing_runs_meanwhile(tmp_path):
    node = Node(tmp_path, images=(IMAGE,))
    pod = make_pod()
    node.cri.fail("run_pod_sandbox", "network plugin not ready: no network config found")
    assert node.syncer.sync(pod) == ERROR_RETRY
    assert node.events.posted[-1] == (
        "FailedCreatePodSandBox",
        "Failed to create pod sandbox: network plugin not ready: no network config found")
    assert node.cri.verbs() == ["run_pod_sandbox"]
    assert node.syncer.sync(pod) is None
    node.running()


@pytest.mark.parametrize("grace_override,timeout", [(None, 30), (0, 0)])
def test_killing_a_pod_stops_its_containers_with_the_grace_period_then_its_sandbox(
        tmp_path, grace_override, timeout):
    node = Node(tmp_path, images=(IMAGE,))
    pod = make_pod()
    node.syncer.sync(pod)
    container_id = node.running()
    sandbox_id = node.runtime().sandboxes[0].id
    node.cri.calls.clear()
    node.syncer.kill_pod(pod, node.runtime(), grace_override)
    assert node.cri.calls == [("stop_container", container_id, timeout),
                              ("stop_pod_sandbox", sandbox_id)]
    runtime = node.runtime()
    assert runtime.sandboxes[0].state == SANDBOX_NOTREADY and not runtime.running()


@pytest.mark.parametrize("exit_code,phase,reason", [(0, "Succeeded", "Completed"),
                                                     (3, "Failed", "Error")])
def test_the_pod_phase_follows_its_containers_exit(tmp_path, exit_code, phase, reason):
    node = Node(tmp_path, images=(IMAGE,))
    pod = make_pod(policy="Never")
    node.syncer.sync(pod)
    node.cri.exit(node.running(), exit_code)
    status = node.status(pod)
    assert status["phase"] == phase
    terminated = status["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (exit_code, reason)


def test_a_failing_post_start_hook_stops_its_container(tmp_path):
    node = Node(tmp_path, images=(IMAGE,))
    pod = make_pod()
    pod.obj["spec"]["containers"][0]["lifecycle"] = {
        "postStart": {"exec": {"command": ["cat", "/ready"]}}}
    node.cri.exec_results[("cat", "/ready")] = ExecResult(1, "", "cat: can't open '/ready'")
    assert node.syncer.sync(pod) == ERROR_RETRY
    container_id = node.runtime().latest("c").id
    assert node.cri.calls[-2:] == [("exec_sync", container_id, ("cat", "/ready")),
                                   ("stop_container", container_id, 30)]
    message = "PostStartHook failed: cat: can't open '/ready'"
    assert ("FailedPostStartHook", message) in node.events.posted
    assert waiting(node.status(pod)) == {"reason": "PostStartHookError", "message": message}


def test_exit_events_name_the_pod_to_sync(tmp_path):
    node = Node(tmp_path, images=(IMAGE,))
    woken: list[str] = []
    node.cri.subscribe(lambda event: woken.append(event.pod_uid))
    node.syncer.sync(make_pod())
    node.cri.exit(node.running(), 0)
    assert woken == [UID]


def test_gc_keeps_the_newest_dead_container_and_removes_what_gone_pods_left(tmp_path):
    node = Node(tmp_path, images=(IMAGE,))
    pod = make_pod()
    node.syncer.sync(pod)
    for _ in range(3):           # three dead containers of c, then a running one
        node.clock.now += 1000
        node.cri.exit(node.running(), 1)
        node.syncer.sync(pod)
    dead = [c.id for c in node.runtime().containers if c.state == CONTAINER_EXITED]
    leftovers: list[bool] = []
    known = {UID}
    gc = GarbageCollector(node.cri, lambda: leftovers.append(True), node.cgroups,
                          str(tmp_path / "pods"), 1, lambda: set(known), lambda: True)
    gc.collect()
    runtime = node.runtime()
    assert [c.id for c in runtime.containers if c.state == CONTAINER_EXITED] == dead[:1]
    assert len(runtime.running()) == 1 and runtime.sandboxes[0].state == SANDBOX_READY
    assert leftovers == [True]
    known.clear()                # the pod was deleted while the kubelet was away
    node.cri.stop_pod_sandbox(runtime.sandboxes[0].id)
    gc.collect()
    assert node.cri.list_containers() == [] and node.cri.list_pod_sandboxes() == []
    assert node.cgroups.made == set()
