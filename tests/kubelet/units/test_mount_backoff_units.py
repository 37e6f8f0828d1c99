"""A pod whose volumes fail to set up is retried after a short back-off (0.5 s doubling to
2 min 2 s, as the kubelet's volume operations), not after the 10 s of a failed sync: the first
mount of kube-root-ca.crt can get the Node authorizer's 403 for a moment (issue 25)."""
from __future__ import annotations

from cri.fake import FakeRuntime
from kubelet.sync.backoff import Backoff
from kubelet.sync.etc_files import PodEtcFiles
from kubelet.sync.security_context import SeccompSettings
from kubelet.sync.syncer import MOUNT_RETRY_INITIAL, MOUNT_RETRY_MAXIMUM, PodSyncer
from kubelet.config_objects import ConfigObjects
from kubelet.pods import Pod
from kubelet.volumes.manager import VolumeError, Volumes

IMAGE = "busybox:1.36"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class FailingVolumes(Volumes):
    """Volumes whose setup fails `failures` times (a 403 of the API server), then works."""

    def __init__(self, root: str, failures: int) -> None:
        super().__init__(root, ConfigObjects(None), 2, 1 << 30)
        self.failures = failures

    def setup(self, pod: Pod) -> dict:
        if self.failures:
            self.failures -= 1
            raise VolumeError("kube-root-ca", 'configmaps "kube-root-ca.crt" is forbidden')
        return super().setup(pod)


class Cgroups:
    def parent_of(self, pod: Pod) -> str:
        return f"/pycontainer/kubepods/pod{pod.uid}"

    def ensure(self, pod: Pod) -> None:
        pass

    def destroy(self, uid: str) -> None:
        pass


class Events:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    def pod(self, pod: Pod, kind: str, reason: str, message: str,
            container: str | None = None) -> None:
        self.reasons.append(reason)


def _syncer(tmp_path, failures: int, clock: Clock) -> tuple[PodSyncer, FakeRuntime]:
    cri = FakeRuntime(clock=clock, images=(IMAGE,))
    root = str(tmp_path / "root")
    volumes = FailingVolumes(root, failures)
    syncer = PodSyncer(cri, cri, Cgroups(), str(tmp_path / "pods"), volumes, "192.0.2.10",
                       Events(), PodEtcFiles(root, "/etc/resolv.conf", [], "cluster.local"),
                       1 << 30, SeccompSettings(str(tmp_path / "seccomp")))
    syncer.mount_backoff = Backoff(MOUNT_RETRY_INITIAL, MOUNT_RETRY_MAXIMUM, clock=clock)
    return syncer, cri


def _pod() -> Pod:
    return Pod({"metadata": {"name": "p", "namespace": "ns", "uid": "uid-1"},
                "spec": {"restartPolicy": "Always", "containers": [
                    {"name": "c", "image": IMAGE, "imagePullPolicy": "IfNotPresent",
                     "command": ["sleep", "1"]}]}})


def test_failed_mounts_retry_after_half_a_second_doubling(tmp_path):
    clock = Clock()
    syncer, cri = _syncer(tmp_path, 3, clock)
    waits = []
    for _ in range(3):
        waits.append(syncer.sync(_pod()))
        clock.now += waits[-1]
    assert waits == [0.5, 1.0, 2.0]
    assert syncer.reasons("uid-1")["c"][0] == "ContainerCreating"
    assert "run_pod_sandbox" not in cri.verbs()
    # the fourth attempt mounts and starts the pod; the back-off starts over
    assert syncer.sync(_pod()) is None
    assert "start_container" in cri.verbs()
    assert syncer.mount_backoff.delay("uid-1/volumes") == 0.0


def test_the_back_off_stops_at_the_kubelets_maximum(tmp_path):
    clock = Clock()
    syncer, _ = _syncer(tmp_path, 20, clock)
    waits = []
    for _ in range(12):
        waits.append(syncer.sync(_pod()))
        clock.now += waits[-1]
    assert max(waits) == MOUNT_RETRY_MAXIMUM == 122.0
    assert waits[-1] == 122.0
