"""Pod start latency and the idle cost of pykubelet, on this machine, end to end: a real
pyapiserver, pykubelet, shims and CNI (our bridge plugin in-process), busybox:1.36 from the local
store (imagePullPolicy Never: no pull).

For 1, 30 and 100 pods created at once: the time from each pod's creation (the create call) to
the moment a watcher sees it Running (phase Running, its container running), p50 and p99. Then,
with the 100 pods running, the kubelet's idle CPU (share of one core over --idle seconds) and
its RSS.

    sudo .venv/bin/python bench/kubelet_pod_start.py [--idle 60]
    sudo .venv/bin/python bench/kubelet_pod_start.py --baseline DIR [--rounds 2]

--baseline: the kubelet of another tree beside ours, alternating round by round on the same API
server: DIR holds the packages to run instead of this checkout's (e.g. kubelet/, cni/ and netns/
from `git archive COMMIT kubelet cni netns`), found first through PYTHONPATH; everything else
(the shim, the runtime) comes from this checkout for both. Each round starts 30 then 100 pods
on each kubelet, then the floors of 100 containers.

Targets (issue 8): p99 under 2 s for 100 pods (Kubernetes' own SLO is 5 s), idle kubelet under 5%
of a core. There is no reference kubelet on this machine to run beside it (no kubelet binary in
Debian's archive or on PyPI), so the figures are reported against those targets, and beside the
floor the layers below the kubelet set: the same number of containers started through shim.start
alone (busybox bundles ready, no kubelet, API server, network or image snapshot), in this run.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for extra in ("tests", "tests/kubelet"):
    sys.path.insert(0, os.path.join(REPO, extra))
sys.path.insert(0, REPO)   # before tests/: its package-named test folders must not shadow ours

from bench_node import bench_node  # noqa: E402
from kubelet_testlib import Api, KubeletProcess, pod_manifest  # noqa: E402
from stats import CLK_TCK, cpu_seconds, percentile, rss_kib  # noqa: E402


class RunningWatcher:
    """Watches a namespace; records when each pod is first seen Running."""

    def __init__(self, api: Api, namespace: str) -> None:
        self.seen: dict[str, float] = {}
        self.ready = threading.Event()
        self._watch = api.client.watch(f"/api/v1/namespaces/{namespace}/pods",
                                       {"timeoutSeconds": "600"})
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for _, pod in self._watch:
                status = pod.get("status") or {}
                statuses = status.get("containerStatuses") or []
                if status.get("phase") == "Running" and statuses and \
                        all("running" in s["state"] for s in statuses):
                    self.seen.setdefault(pod["metadata"]["name"], time.monotonic())
        except Exception:  # noqa: BLE001 - closed by stop()
            pass

    def stop(self) -> None:
        self._watch.close()


def start_pods(api: Api, kubelet: KubeletProcess, count: int) -> tuple[str, list[float]]:
    namespace = api.namespace()
    watcher = RunningWatcher(api, namespace)
    time.sleep(0.2)
    created: dict[str, float] = {}

    def create(i: int) -> None:
        name = f"p{i}"
        created[name] = time.monotonic()
        api.create_pod(namespace, pod_manifest(name, kubelet.node, "exec sleep 100000",
                                               grace=1))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(count)))
    deadline = time.monotonic() + 120
    while len(watcher.seen) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    watcher.stop()
    if len(watcher.seen) < count:
        raise SystemExit(f"only {len(watcher.seen)} of {count} pods Running after 120 s")
    return namespace, [watcher.seen[n] - created[n] for n in created]


def _floor_bundles(work: str, rootfs: str, cgroup: str, count: int) -> list[str]:
    """`count` ready busybox bundles running `sleep`, each in a cgroup under `cgroup`."""
    import json

    import cgroups
    from runtime.default_spec import default_spec

    bundles = []
    for i in range(count):
        bundle = os.path.join(work, f"b{i}")
        os.makedirs(bundle)
        spec = default_spec(cgroups.detect_mode() == "v2")
        spec["process"].update(terminal=False, args=["sleep", "100000"])
        spec["root"] = {"path": rootfs, "readonly": True}
        spec["linux"]["cgroupsPath"] = f"{cgroup}/c{i}"
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(spec, f)
        bundles.append(bundle)
    return bundles


def shim_floor(base: str, rootfs: str, count: int) -> tuple[float, float]:
    """(wall seconds, machine CPU seconds) to start `count` containers at once through
    shim.start, each from a ready bundle: what the shim and the runtime cost by themselves."""
    import cgroups
    import shim

    work = tempfile.mkdtemp(prefix="floor-", dir=base)
    shim_root, runtime_root = os.path.join(work, "shims"), os.path.join(work, "rt")
    cgroup = f"/pycontainer/bench-floor-{uuid.uuid4().hex[:6]}"
    bundles = _floor_bundles(work, rootfs, cgroup, count)
    try:
        cpu0, t0 = machine_cpu_seconds(), time.monotonic()
        with ThreadPoolExecutor(count) as pool:
            list(pool.map(lambda i: shim.start(shim.ShimConfig(
                f"c{i}", bundles[i], shim_root=shim_root, runtime_root=runtime_root)),
                range(count)))
        return time.monotonic() - t0, machine_cpu_seconds() - cpu0
    finally:
        for info in shim.list_shims(shim_root):
            try:
                with shim.connect(info.id, shim_root) as client:
                    client.shutdown()
            except shim.ShimError:
                pass    # it died: the cgroup's destruction below ends its container
        for pid in os.listdir("/proc"):     # the zygote of this shim root
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if shim_root.encode() in f.read():
                        os.kill(int(pid), 9)
            except (OSError, ValueError):
                continue
        cgroups.open_cgroup(cgroup).destroy()


def runc_floor(base: str, rootfs: str, count: int) -> tuple[float, float] | None:
    """The same containers started at once by `runc run -d` (Go, no shim, no zygote): the
    machine's floor for starting that many containers with the reference runtime."""
    import shutil

    import cgroups

    runc = shutil.which("runc")
    if runc is None:
        return None
    work = tempfile.mkdtemp(prefix="runc-floor-", dir=base)
    root = os.path.join(work, "root")
    cgroup = f"/pycontainer/bench-runc-{uuid.uuid4().hex[:6]}"
    bundles = _floor_bundles(work, rootfs, cgroup, count)
    try:
        cpu0, t0 = machine_cpu_seconds(), time.monotonic()
        with ThreadPoolExecutor(count) as pool:
            list(pool.map(lambda i: subprocess.run(
                [runc, "--root", root, "run", "-d", "-b", bundles[i], f"c{i}"], check=True,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL), range(count)))
        return time.monotonic() - t0, machine_cpu_seconds() - cpu0
    finally:
        for i in range(count):
            subprocess.run([runc, "--root", root, "delete", "--force", f"c{i}"],
                           stderr=subprocess.DEVNULL)
        cgroups.open_cgroup(cgroup).destroy()


def print_floors(base: str, count: int) -> None:
    rootfs = os.path.join(base, "floor-rootfs")
    wall, cpu = shim_floor(base, rootfs, count)
    print(f"{count:3d} containers through shim.start alone: {wall:.2f} s, machine CPU "
          f"{cpu / count * 1000:.0f} ms per container", flush=True)
    reference = runc_floor(base, rootfs, count)
    if reference is not None:
        wall, cpu = reference
        print(f"{count:3d} containers through `runc run -d` alone: {wall:.2f} s, machine CPU "
              f"{cpu / count * 1000:.0f} ms per container; load {os.getloadavg()[0]:.1f}",
              flush=True)


def machine_cpu_seconds() -> float:
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / CLK_TCK     # all but idle and iowait


def delete_all(api: Api, namespace: str) -> None:
    for pod in api.pods(namespace):
        api.delete_pod(namespace, pod["metadata"]["name"])
    deadline = time.monotonic() + 120
    while api.pods(namespace) and time.monotonic() < deadline:
        time.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of idle measurement")
    parser.add_argument("--baseline", metavar="DIR",
                        help="packages of another tree to run the kubelet from, alternating")
    parser.add_argument("--rounds", type=int, default=2, help="rounds with --baseline")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: pods need namespaces, cgroups and mounts")
    if args.baseline and not os.path.isdir(args.baseline):
        raise SystemExit(f"--baseline: {args.baseline} is not a directory")
    with bench_node("kubelet-bench-") as bench:
        subprocess.run([os.path.join(REPO, "scripts", "busybox-rootfs.sh"),
                        os.path.join(bench.base, "floor-rootfs")], check=True)
        if args.baseline:
            alternate(bench, os.path.abspath(args.baseline), args.rounds)
        else:
            measure(bench.api, bench.server, bench.kubelet, bench.base, args.idle)
    return 0


def burst(api: Api, server, kubelet: KubeletProcess, count: int, label: str) -> str:
    """Starts `count` pods at once, prints what it took; returns their namespace."""
    cpu0 = machine_cpu_seconds()
    kubelet0, server0 = cpu_seconds(kubelet.proc.pid), cpu_seconds(server.proc.pid)
    load0 = os.getloadavg()[0]
    namespace, latencies = start_pods(api, kubelet, count)
    print(f"{label}{count:3d} pods at once: creation -> Running seen by a watcher: "
          f"p50 {statistics.median(latencies):.2f} s, p99 "
          f"{percentile(latencies, 99):.2f} s, max {max(latencies):.2f} s; CPU per pod: "
          f"machine {(machine_cpu_seconds() - cpu0) / count * 1000:.0f} ms, kubelet "
          f"{(cpu_seconds(kubelet.proc.pid) - kubelet0) / count * 1000:.0f} ms, API "
          f"server {(cpu_seconds(server.proc.pid) - server0) / count * 1000:.0f} ms; "
          f"load {load0:.1f} -> {os.getloadavg()[0]:.1f}", flush=True)
    return namespace


def alternate(bench, baseline: str, rounds: int) -> None:
    """Ours and the baseline's kubelet in turn on one API server and node name, a fresh kubelet
    for each turn (the previous one stopped and cleaned up), the side that goes first swapped
    every round."""
    sides = [("ours    ", None), ("baseline", baseline)]
    kubelet = bench.kubelet
    try:
        for r in range(rounds):
            for label, path in sides if r % 2 == 0 else sides[::-1]:
                if kubelet is not None:
                    kubelet.cleanup()
                    kubelet = None
                kubelet = _kubelet(bench, kubelet_from=path)
                for count in (30, 100):
                    namespace = burst(bench.api, bench.server, kubelet, count,
                                      f"round {r + 1} {label} ")
                    delete_all(bench.api, namespace)
            print_floors(bench.base, 100)
    finally:
        if kubelet is not None and kubelet is not bench.kubelet:
            kubelet.cleanup()   # bench_node cleans up the one it started


def _kubelet(bench, kubelet_from: str | None) -> KubeletProcess:
    """A started kubelet of the bench's node, from this checkout or from `kubelet_from`'s
    packages (first on its PYTHONPATH)."""
    kubelet = KubeletProcess(bench.server, bench.node, bench.kubelet.token,
                             bench.kubelet.image_root)
    saved = os.environ.get("PYTHONPATH")
    if kubelet_from:
        os.environ["PYTHONPATH"] = kubelet_from
    try:
        kubelet.start()
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    return kubelet


def measure(api: Api, server, kubelet: KubeletProcess, base: str, idle: float) -> None:
    print(f"pykubelet pid {kubelet.proc.pid}, pyapiserver {server.url}")
    for count in (1, 30, 100):
        cpu0 = machine_cpu_seconds()
        kubelet0, server0 = cpu_seconds(kubelet.proc.pid), cpu_seconds(server.proc.pid)
        namespace, latencies = start_pods(api, kubelet, count)
        print(f"{count:3d} pods at once: creation -> Running seen by a watcher: "
              f"p50 {statistics.median(latencies):.2f} s, p99 "
              f"{percentile(latencies, 99):.2f} s, max {max(latencies):.2f} s; CPU per pod: "
              f"machine {(machine_cpu_seconds() - cpu0) / count * 1000:.0f} ms, kubelet "
              f"{(cpu_seconds(kubelet.proc.pid) - kubelet0) / count * 1000:.0f} ms, API "
              f"server {(cpu_seconds(server.proc.pid) - server0) / count * 1000:.0f} ms; "
              f"load {os.getloadavg()[0]:.1f}", flush=True)
        if count < 100:
            delete_all(api, namespace)
            print_floors(base, count)
    time.sleep(5)   # let the last status writes and events settle
    pid = kubelet.proc.pid
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(idle)
    share = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
    print(f"idle with 100 pods over {idle:.0f} s: kubelet CPU {share * 100:.2f}% of a "
          f"core, RSS {rss_kib(pid) / 1024:.1f} MiB, threads "
          f"{len(os.listdir(f'/proc/{pid}/task'))}")
    delete_all(api, namespace)
    print_floors(base, 100)


if __name__ == "__main__":
    sys.exit(main())
