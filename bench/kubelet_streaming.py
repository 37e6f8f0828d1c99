"""exec and port-forward through the API server and pykubelet, beside what they wrap, on this
machine: a real pyapiserver and pykubelet, busybox:1.36 pods, the real kubectl.

- exec: `kubectl exec POD -- true` (WebSocket, kubectl's default) wall time, and the kubelet's
  CPU per exec, alternating round by round with `pycontainer exec CONTAINER true` on the same
  container (the runtime call the kubelet makes; no API server, kubelet or protocol).
- port-forward: one download of a file from busybox httpd in the pod, through `kubectl
  port-forward` and straight to the pod's IP, one connection and then 20 at once (MB/s of all
  of them together), alternating.

    sudo .venv/bin/python bench/kubelet_streaming.py [--runs 30] [--mib 32]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for extra in ("tests", "tests/kubelet"):
    sys.path.insert(0, os.path.join(REPO, extra))
sys.path.insert(0, REPO)   # before tests/: its package-named test folders must not shadow ours

from bench_node import bench_node  # noqa: E402
from kubelet_testlib import BIN, Api, KubeletProcess, pod_manifest  # noqa: E402
from stats import CLK_TCK, load, median, ms, p90  # noqa: E402
from testlib.pyapiserver import Server  # noqa: E402

KUBECTL = os.path.join(BIN, "kubectl")
PYCONTAINER = os.path.join(BIN, "pycontainer")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(the process's own CPU, that of its children it reaped): the runtime the kubelet runs
    per exec is such a child."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return ((int(fields[11]) + int(fields[12])) / CLK_TCK,
            (int(fields[13]) + int(fields[14])) / CLK_TCK)


def running_pod(api: Api, namespace: str, node: str, command: str) -> dict:
    name = "b-" + uuid.uuid4().hex[:6]
    api.create_pod(namespace, pod_manifest(name, node, command))
    deadline = time.monotonic() + 120
    while not (pod := api.running(namespace, name)):
        if time.monotonic() > deadline:
            raise SystemExit(f"pod {name} did not start")
        time.sleep(0.2)
    return pod


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def bench_exec(server: Server, kubelet: KubeletProcess, namespace: str, pod: dict,
               runs: int) -> None:
    name = pod["metadata"]["name"]
    container_id = kubelet.container_records(pod["metadata"]["uid"])[0]["id"]
    via_kubectl = [KUBECTL, "--kubeconfig", server.kubeconfig, "-n", namespace, "exec", name,
                   "--", "true"]
    direct = [PYCONTAINER, "--root", os.path.join(kubelet.root, "runtime"), "exec",
              container_id, "true"]
    kubectl_walls, direct_walls = [], []
    timed(via_kubectl)  # warm: the kubectl binary and the TLS sessions
    own, children = 0.0, 0.0
    for _ in range(runs):
        before = cpu_seconds(kubelet.proc.pid)
        kubectl_walls.append(timed(via_kubectl))
        after = cpu_seconds(kubelet.proc.pid)
        own += after[0] - before[0]
        children += after[1] - before[1]
        direct_walls.append(timed(direct))
    print(f"exec, {runs} rounds (ms)        median     p90")
    print(f"  kubectl exec -- true        {ms(median(kubectl_walls))} {ms(p90(kubectl_walls))}")
    print(f"  pycontainer exec true       {ms(median(direct_walls))} {ms(p90(direct_walls))}")
    print(f"  ratio of medians            {median(kubectl_walls) / median(direct_walls):7.2f}")
    print(f"  kubelet CPU per exec        {ms(own / runs)} own + {ms(children / runs)} its "
          f"runtime child (means of {1000 / CLK_TCK:.0f} ms clock ticks)")


def download(url: str) -> int:
    with urllib.request.urlopen(url, timeout=300) as resp:
        size = 0
        while chunk := resp.read(1 << 20):
            size += len(chunk)
    return size


def throughput(url: str, parallel: int) -> float:
    """MB/s of `parallel` downloads of url at once, all bytes over the wall time."""
    start = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        total = sum(pool.map(download, [url] * parallel))
    return total / 1e6 / (time.perf_counter() - start)


def bench_port_forward(server: Server, namespace: str, pod: dict, runs: int) -> None:
    name = pod["metadata"]["name"]
    forward = subprocess.Popen([KUBECTL, "--kubeconfig", server.kubeconfig, "-n", namespace,
                                "port-forward", name, ":8080"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
    try:
        line = forward.stdout.readline().decode()
        if not line.startswith("Forwarding from 127.0.0.1:"):
            raise SystemExit(f"kubectl port-forward: {line}")
        port = int(line.split("127.0.0.1:")[1].split()[0])
        forwarded = f"http://127.0.0.1:{port}/big"
        straight = f"http://{pod['status']['podIP']}:8080/big"
        for parallel in (1, 20):
            fwd, direct = [], []
            for _ in range(runs):
                fwd.append(throughput(forwarded, parallel))
                direct.append(throughput(straight, parallel))
            print(f"port-forward, {parallel} connection(s) at once, {runs} rounds (MB/s, "
                  f"median): kubectl port-forward {median(fwd):.1f}, straight to the pod IP "
                  f"{median(direct):.1f}, ratio {median(fwd) / median(direct):.2f}")
    finally:
        forward.terminate()
        forward.wait(30)
        forward.stdout.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="exec rounds")
    parser.add_argument("--mib", type=int, default=32, help="size of the downloaded file")
    parser.add_argument("--transfers", type=int, default=5, help="port-forward rounds")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: pods need namespaces, cgroups and mounts")
    with bench_node("streaming-bench-") as bench:
        api, node = bench.api, bench.node
        namespace = api.namespace()
        print(load())
        idle = running_pod(api, namespace, node, "sleep 1d")
        bench_exec(bench.server, bench.kubelet, namespace, idle, args.runs)
        web = running_pod(api, namespace, node,
                          f"mkdir -p /www && head -c {args.mib << 20} /dev/zero > /www/big && "
                          "exec httpd -f -p 8080 -h /www")
        bench_port_forward(bench.server, namespace, web, args.transfers)
        print(load())
    return 0


if __name__ == "__main__":
    sys.exit(main())
