"""Deployments at scale on this machine, end to end: a real pyapiserver, pycontroller-manager
(deployment and replicaset controllers, as a process) and pykubelet running busybox pods from
the local store.

1. A Deployment of --replicas pods (100) applied: for each pod, the time from the apply to a
   watcher seeing it Ready, and from the pod's creation to Ready (p50/p99); the controller
   manager's CPU over the rollout.
2. A rolling update of it (an env change, default 25 % surge/unavailable): the time until every
   pod runs the new template and the old ones are gone; the manager's CPU.
3. The manager's idle CPU (share of one core over --idle seconds) with --deployments (100)
   Deployments of 0 replicas in place, so that only the controllers' idle cost is measured
   (100 x N running pods would be the kubelet's cost, measured in kubelet_pod_start.py).

    sudo .venv/bin/python bench/deployment_bench.py [--replicas 100] [--idle 30]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for extra in ("tests", "tests/kubelet"):
    sys.path.insert(0, os.path.join(REPO, extra))
sys.path.insert(0, REPO)   # before tests/: its package-named test folders must not shadow ours

from bench_node import bench_node  # noqa: E402
from kubelet_testlib import IMAGE, Api  # noqa: E402
from stats import cpu_seconds, percentile, rss_kib  # noqa: E402
from testlib.processes import stop  # noqa: E402

BIN = os.path.dirname(sys.executable)
COMMAND = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]


def is_ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


class ReadyWatcher:
    """When each pod of a namespace is first seen (ADDED) and first seen Ready."""

    def __init__(self, api: Api, namespace: str) -> None:
        self.added: dict[str, float] = {}
        self.ready: dict[str, float] = {}
        self.pods: dict[str, dict] = {}
        self._watch = api.client.watch(f"/api/v1/namespaces/{namespace}/pods",
                                       {"timeoutSeconds": "1800"})
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for kind, pod in self._watch:
                name, now = pod["metadata"]["name"], time.monotonic()
                self.added.setdefault(name, now)
                if kind == "DELETED":
                    self.pods.pop(name, None)
                    continue
                self.pods[name] = pod
                if is_ready(pod):
                    self.ready.setdefault(name, now)
        except Exception:  # noqa: BLE001 - closed by stop()
            pass

    def stop(self) -> None:
        self._watch.close()


def wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.2)


def deployment(name: str, replicas: int, node: str, env: str = "1") -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {
                         "nodeSelector": {"kubernetes.io/hostname": node},
                         "terminationGracePeriodSeconds": 2,
                         "containers": [{"name": "c", "image": IMAGE, "command": COMMAND,
                                         "env": [{"name": "V", "value": env}]}]}}}}


def kubectl(api: Api, *args: str, data: dict | None = None) -> None:
    if data is None:
        proc = api.kubectl(*args, timeout=120)
    else:
        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            json.dump(data, f)
            f.flush()
            proc = api.kubectl(*args, "-f", f.name, timeout=120)
    if proc.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=100)
    parser.add_argument("--deployments", type=int, default=100)
    parser.add_argument("--idle", type=float, default=30.0)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: pods need namespaces, cgroups and mounts")
    with bench_node("deployment-bench-", {"maxPods": max(110, 2 * args.replicas)}) as bench:
        log = open(os.path.join(bench.base, "manager.log"), "w")
        manager = subprocess.Popen(
            [os.path.join(BIN, "pycontroller-manager"), "--kubeconfig",
             bench.server.kubeconfig, "--leader-elect=false",
             "--controllers=deployment,replicaset"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        try:
            measure(bench.api, bench.node, manager, args)
        finally:
            stop(manager, wait=20)
    return 0


def measure(api: Api, node: str, manager: subprocess.Popen, args: argparse.Namespace) -> None:
    ns = api.namespace()
    n = args.replicas
    watcher = ReadyWatcher(api, ns)
    time.sleep(0.2)  # the watch is open before the apply
    cpu0, t0 = cpu_seconds(manager.pid), time.monotonic()
    kubectl(api, "apply", "-n", ns, data=deployment("big", n, node))
    wait(lambda: len(watcher.ready) >= n, 600, f"{n} pods Ready")
    took, cpu = time.monotonic() - t0, cpu_seconds(manager.pid) - cpu0
    from_apply = [watcher.ready[p] - t0 for p in watcher.ready]
    from_create = [watcher.ready[p] - watcher.added[p] for p in watcher.ready]
    print(f"{n} replicas: apply -> all Ready {took:.1f} s; per pod apply -> Ready p50 "
          f"{statistics.median(from_apply):.2f} s p99 {percentile(from_apply, 99):.2f} s; "
          f"pod creation -> Ready p50 {statistics.median(from_create):.2f} s p99 "
          f"{percentile(from_create, 99):.2f} s; controller manager CPU {cpu:.2f} s "
          f"({cpu / took * 100:.0f} % of a core)", flush=True)

    first = set(watcher.ready)
    cpu0, t0 = cpu_seconds(manager.pid), time.monotonic()
    kubectl(api, "apply", "-n", ns, data=deployment("big", n, node, env="2"))

    def rolled() -> bool:
        pods = list(watcher.pods.values())
        return len(pods) == n and not any(p["metadata"]["name"] in first for p in pods) \
            and all(is_ready(p) for p in pods)
    wait(rolled, 900, "rolling update")
    took, cpu = time.monotonic() - t0, cpu_seconds(manager.pid) - cpu0
    print(f"rolling update of {n} (25 % surge/unavailable): {took:.1f} s until every pod "
          f"is new, Ready and the old ones gone; controller manager CPU {cpu:.2f} s "
          f"({cpu / took * 100:.0f} % of a core)", flush=True)
    watcher.stop()
    kubectl(api, "delete", "deployment", "big", "-n", ns, "--cascade=foreground",
            "--wait=false")
    kubectl(api, "scale", "replicaset", "--all", "-n", ns, "--replicas=0")
    wait(lambda: not api.pods(ns), 600, "pods gone")

    idle_ns = api.namespace()
    for i in range(args.deployments):
        api.client.create(f"/apis/apps/v1/namespaces/{idle_ns}/deployments",
                          deployment(f"d{i}", 0, node))
    wait(lambda: len(api.client.get(f"/apis/apps/v1/namespaces/{idle_ns}/replicasets")
                     ["items"]) >= args.deployments, 300, "ReplicaSets of all Deployments")
    time.sleep(5)  # let the last status writes settle before measuring idle
    cpu0 = cpu_seconds(manager.pid)
    time.sleep(args.idle)
    idle = (cpu_seconds(manager.pid) - cpu0) / args.idle
    print(f"idle with {args.deployments} Deployments: controller manager CPU "
          f"{idle * 100:.2f} % of a core over {args.idle:.0f} s, RSS "
          f"{rss_kib(manager.pid) / 1024:.0f} MiB", flush=True)


if __name__ == "__main__":
    sys.exit(main())
