"""The cost of exec probes on this machine, end to end: pods whose container has an exec
liveness probe (`true`), run by a real pykubelet, and the CPU everything involved spends per
second while nothing else happens, as a share of one core:

- the kubelet process itself (probe workers, status),
- its shims and the runtime forks they run the probes with (the kubelet's own cgroup),
- the probe processes in the pods' cgroups (and the containers, which sleep),

beside the floor of the layers below: the same rate of execs through the shims' exec directly.

    sudo .venv/bin/python bench/kubelet_probe_overhead.py [--pods 100] [--period 10] [--window 60]

Target (issue 9): 100 pods probed every 10 s under 10% of a core. There is no reference kubelet
on this machine to run beside it, so the figure is reported against that target and the floor.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for extra in ("tests", "tests/kubelet"):
    sys.path.insert(0, os.path.join(REPO, extra))
sys.path.insert(0, REPO)

from bench_node import bench_node  # noqa: E402
from kubelet_testlib import KubeletProcess, pod_manifest, wait_for  # noqa: E402
from stats import cpu_seconds  # noqa: E402

from cri.api import CONTAINER_RUNNING  # noqa: E402

CPUACCT = "/sys/fs/cgroup/cpuacct"


def cgroup_seconds(path: str) -> float:
    with open(f"{CPUACCT}{path}/cpuacct.usage") as f:
        return int(f.read()) / 1e9


def exec_floor(kubelet: KubeletProcess, container_ids: list[str], rate: float,
               window: float) -> float:
    """CPU seconds per second of execs at `rate` per second through the shims directly (the
    kubelet's cgroup and the pods' cgroups, as above)."""
    import shim

    stop = threading.Event()

    def loop() -> None:
        i = 0
        next_at = time.monotonic()
        while not stop.is_set():
            try:
                with shim.connect(container_ids[i % len(container_ids)], kubelet.shim_root) as c:
                    c.exec(["true"], timeout=5)
            except shim.ShimError:
                pass  # a container the kubelet restarted meanwhile (a probe timed out)
            i += 1
            next_at += 1 / rate
            stop.wait(max(next_at - time.monotonic(), 0))
    before = cgroup_seconds(f"/pycontainer/{os.path.basename(CG)}") + \
        cgroup_seconds(kubelet.cgroup_root)
    t0 = time.monotonic()
    thread = threading.Thread(target=loop)
    thread.start()
    time.sleep(window)
    stop.set()
    thread.join()
    return (cgroup_seconds(f"/pycontainer/{os.path.basename(CG)}") +
            cgroup_seconds(kubelet.cgroup_root) - before) / (time.monotonic() - t0)


CG = f"{CPUACCT}/pycontainer/probebench-{os.getpid()}"


def runc_exec_seconds(base: str, runs: int = 30) -> float:
    """CPU seconds of one `runc exec CONTAINER true` (runc's processes and what runs in the
    container's cgroup), on a busybox container of its own."""
    import json
    import resource
    import subprocess

    import cgroups
    from runtime.default_spec import default_spec

    bundle = os.path.join(base, "runc-bundle")
    subprocess.run([os.path.join(REPO, "scripts", "busybox-rootfs.sh"),
                    os.path.join(bundle, "rootfs")], check=True)
    spec = default_spec(cgroups.detect_mode() == "v2")
    spec["process"].update(terminal=False, args=["sleep", "100000"])
    cgroup = f"/pycontainer/probebench-runc-{os.getpid()}"
    spec["linux"]["cgroupsPath"] = cgroup
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)
    root = os.path.join(base, "runc-root")
    runc = shutil.which("runc") or "/usr/sbin/runc"
    subprocess.run([runc, "--root", root, "run", "-d", "-b", bundle, "probe"], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        inside = cgroup_seconds(cgroup)
        for _ in range(runs):
            subprocess.run([runc, "--root", root, "exec", "probe", "true"], check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return ((after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) +
                cgroup_seconds(cgroup) - inside) / runs
    finally:
        subprocess.run([runc, "--root", root, "delete", "--force", "probe"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=100)
    parser.add_argument("--period", type=int, default=10, help="periodSeconds of the probe")
    parser.add_argument("--window", type=float, default=60.0, help="seconds measured")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: pods need namespaces, cgroups and mounts")
    os.makedirs(CG)
    try:
        with bench_node("probe-bench-", {"syncFrequency": "60s"}) as bench:
            measure(bench.api, bench.kubelet, bench.base, args)
    finally:
        time.sleep(0.5)
        try:
            os.rmdir(CG)
        except OSError:
            pass
    return 0


def measure(api, kubelet: KubeletProcess, base: str, args: argparse.Namespace) -> None:
    # The kubelet and all it forks (zygote, shims, runtime) count in a cgroup of their own.
    with open(f"{CG}/cgroup.procs", "w") as f:
        f.write(str(kubelet.proc.pid))
    namespace = api.namespace()
    for i in range(args.pods):
        manifest = pod_manifest(f"p{i}", kubelet.node, "exec sleep 100000", grace=1)
        manifest["spec"]["containers"][0]["livenessProbe"] = {
            "exec": {"command": ["true"]}, "periodSeconds": args.period}
        api.create_pod(namespace, manifest)
    wait_for(lambda: sum(1 for p in api.pods(namespace)
                         if p.get("status", {}).get("phase") == "Running") == args.pods,
             timeout=300, interval=1, what="every pod Running")
    time.sleep(args.period + 5)   # every probe worker past its first period
    pid = kubelet.proc.pid
    k0, c0, p0 = cpu_seconds(pid), cgroup_seconds(f"/pycontainer/{os.path.basename(CG)}"), \
        cgroup_seconds(kubelet.cgroup_root)
    restarts = restart_count(api, namespace)
    t0 = time.monotonic()
    time.sleep(args.window)
    elapsed = time.monotonic() - t0
    restarts = restart_count(api, namespace) - restarts
    kubelet_share = (cpu_seconds(pid) - k0) / elapsed
    forks_share = (cgroup_seconds(f"/pycontainer/{os.path.basename(CG)}") - c0) / elapsed \
        - kubelet_share
    pods_share = (cgroup_seconds(kubelet.cgroup_root) - p0) / elapsed
    total = kubelet_share + forks_share + pods_share
    print(f"{args.pods} pods, an exec liveness probe every {args.period} s, over "
          f"{args.window:.0f} s: {100 * total:.1f}% of a core (kubelet "
          f"{100 * kubelet_share:.1f}%, shims and runtime {100 * forks_share:.1f}%, in the "
          f"pods {100 * pods_share:.1f}%); {1000 * total * args.period / args.pods:.2f} ms "
          f"per probe; {restarts} container restarts in the window (a probe that timed out "
          f"under load: each adds a container start's CPU); load {os.getloadavg()[0]:.1f}",
          flush=True)
    records = [r for p in api.pods(namespace) for r in
               kubelet.container_records(p["metadata"]["uid"])]
    ids = [r["id"] for r in records if r["state"] == CONTAINER_RUNNING]
    # The kubelet's probes go on meanwhile: what the direct execs add is the floor.
    floor = exec_floor(kubelet, ids, args.pods / args.period, min(args.window, 30)) - total
    reference = runc_exec_seconds(base) * args.pods / args.period
    print(f"floor: the same rate of execs through the shims alone: {100 * floor:.1f}% of "
          f"a core (ratio {total / floor:.2f}); the reference, `runc exec` at that rate "
          f"(what a probe costs through containerd's runc shim, at least): "
          f"{100 * reference:.1f}%, {1000 * reference * args.period / args.pods:.2f} ms per "
          f"exec (ratio ours/runc {total / reference:.2f})")


def restart_count(api, namespace: str) -> int:
    return sum(s.get("restartCount", 0) for p in api.pods(namespace)
               for s in p.get("status", {}).get("containerStatuses", []))


if __name__ == "__main__":
    sys.exit(main())
