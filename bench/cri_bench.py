"""pycontainer-cri beside containerd 1.6's CRI plugin on this machine, over the same gRPC calls
(critest -benchmark's operations, timed from a Python client of the generated stubs):
RunPodSandbox, CreateContainer+StartContainer, ExecSync `true`, each p50/p99, rounds alternating
between the two runtimes; and each daemon's idle RSS (the daemon alone: shims are per
container, and containerd's pods have a pause container each where ours have none).

    sudo .venv/bin/python bench/cri_bench.py [--runs 30] [--execs 100]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for extra in ("tests", "bench"):
    sys.path.insert(0, os.path.join(REPO, extra))
sys.path.insert(0, REPO)   # before tests/: its package-named test folders must not shadow ours

import grpc  # noqa: E402

from cri.proto import api_pb2 as pb, api_pb2_grpc as pb_grpc  # noqa: E402
from netkit import unique  # noqa: E402
from stats import load, median, ms, rss_kib  # noqa: E402
from testlib import critest_images, imagebuild as ib  # noqa: E402
from testlib.containerd import Containerd  # noqa: E402
from testlib.cri_daemon import BIN, CriDaemon  # noqa: E402

IMAGE = "registry.k8s.io/e2e-test-images/busybox:1.29-2"


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


class Runtime:
    """One daemon's stub and the pod config its pods get."""

    def __init__(self, name: str, endpoint: str, cgroup_parent: str, log_dir: str) -> None:
        self.name = name
        self.channel = grpc.insecure_channel(endpoint)
        self.stub = pb_grpc.RuntimeServiceStub(self.channel)
        self.cgroup_parent = cgroup_parent
        self.log_dir = log_dir
        self.samples: dict[str, list[float]] = {"run": [], "create+start": [], "exec": []}

    def pod(self) -> pb.PodSandboxConfig:
        name = unique("b")
        return pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, uid=unique("uid"), namespace="bench"),
            log_directory=os.path.join(self.log_dir, name),
            linux=pb.LinuxPodSandboxConfig(cgroup_parent=self.cgroup_parent))

    def round(self, execs: int) -> None:
        config = self.pod()
        t = time.perf_counter()
        sandbox = self.stub.RunPodSandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id
        self.samples["run"].append(time.perf_counter() - t)
        try:
            t = time.perf_counter()
            container = self.stub.CreateContainer(pb.CreateContainerRequest(
                pod_sandbox_id=sandbox, sandbox_config=config, config=pb.ContainerConfig(
                    metadata=pb.ContainerMetadata(name="c"), image=pb.ImageSpec(image=IMAGE),
                    command=["sleep", "3600"], log_path="c.log"))).container_id
            self.stub.StartContainer(pb.StartContainerRequest(container_id=container))
            self.samples["create+start"].append(time.perf_counter() - t)
            for _ in range(execs):
                t = time.perf_counter()
                self.stub.ExecSync(pb.ExecSyncRequest(container_id=container, cmd=["true"],
                                                      timeout=10))
                self.samples["exec"].append(time.perf_counter() - t)
        finally:
            self.stub.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sandbox))
            self.stub.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="pods per runtime")
    parser.add_argument("--execs", type=int, default=5, help="ExecSync calls per pod")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="cri-bench-")
    ours = theirs = None
    try:
        images, layout = critest_images.build(workdir)
        archive = os.path.join(workdir, "images.tar")
        ib.tar_directory(layout, archive)
        store = os.path.join(workdir, "store")
        subprocess.run([os.path.join(BIN, "pycontainer"), "--image-root", store, "image",
                        "import", layout], check=True, capture_output=True)
        ours, theirs = CriDaemon(store), Containerd()
        ours.start()
        theirs.start()
        theirs.import_images(archive)
        time.sleep(5)   # idle: what the daemons hold with nothing to do
        idle = {"pycontainer-cri": rss_kib(ours.proc.pid),
                "containerd": rss_kib(theirs.proc.pid)}
        runtimes = [Runtime("pycontainer-cri", ours.endpoint, ours.cgroup_parent, ours.logs),
                    Runtime("containerd", theirs.endpoint, "", os.path.join(workdir, "logs"))]
        for r in runtimes:
            r.round(1)          # warm-up: first unpack, first shim
            r.samples = {k: [] for k in r.samples}
        for _ in range(args.runs):
            for r in runtimes:
                r.round(args.execs)
        print(load())
        print(f"{'figure':28} {'pycontainer-cri p50 (p99)':>28} {'containerd p50 (p99)':>24}")
        for key in ("run", "create+start", "exec"):
            cells = [f"{ms(median(r.samples[key])).strip()} ({ms(p99(r.samples[key])).strip()}) ms"
                     for r in runtimes]
            print(f"{key:28} {cells[0]:>28} {cells[1]:>24}")
        print(f"{'idle RSS':28} {idle['pycontainer-cri'] // 1024:>25} MiB "
              f"{idle['containerd'] // 1024:>21} MiB")
        for r in runtimes:
            r.channel.close()
    finally:
        for daemon in (theirs, ours):
            if daemon is not None:
                daemon.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
