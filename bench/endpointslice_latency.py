"""How fast the EndpointSlice controller follows pods: the time from a pod's readiness written
through pods/status to the MODIFIED EndpointSlice showing it (seen on a watch), and from a
Service's creation to its slices holding all its pods.

Starts a real pyapiserver on 127.0.0.1 (temp data dir) and runs the endpointslice and endpoints
controllers in this process, as pycontroller-manager does. Pods are API objects with an IP in
their status (no kubelet). Run: .venv/bin/python bench/endpointslice_latency.py [--flips N]
"""
from __future__ import annotations

import argparse
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from controllers import manager, registry  # noqa: E402
from controllers.context import Options  # noqa: E402
from kubeapi import kubeconfig  # noqa: E402
from kubeapi.restclient import ApiClient  # noqa: E402

NS = "default"
SLICES = f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices"


def start(data_dir: str) -> subprocess.Popen:
    proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "pyapiserver"),
                             "--bind-address", "127.0.0.1", "--port", "0", "--data-dir",
                             data_dir, "--service-cluster-ip-range", "198.18.0.0/24"],
                            stdout=subprocess.PIPE, text=True)
    proc.stdout.readline()
    return proc


def set_ready(client: ApiClient, name: str, ip: str, ready: bool) -> None:
    client.patch(f"/api/v1/namespaces/{NS}/pods/{name}/status", {"status": {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}})


def ms(values: list[float]) -> str:
    values = sorted(values)
    return (f"median {statistics.median(values) * 1000:.1f} ms, "
            f"p90 {values[int(len(values) * 0.9)] * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flips", type=int, default=50)
    parser.add_argument("--pods", type=int, default=250)
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="pyapiserver-bench-")
    proc = start(data_dir)
    stop = threading.Event()
    client = ApiClient(kubeconfig.load(os.path.join(data_dir, "admin.kubeconfig")), "bench")
    try:
        client.create("/api/v1/nodes", {"metadata": {"name": "bench-node"}})
        for i in range(args.pods):
            client.create(f"/api/v1/namespaces/{NS}/pods", {
                "metadata": {"name": f"p{i}", "labels": {"app": "bench"}},
                "spec": {"nodeName": "bench-node", "containers": [{"name": "c",
                                                                   "image": "busybox"}]}})
            set_ready(client, f"p{i}", f"198.18.{2 + i // 250}.{1 + i % 250}", True)
        threading.Thread(target=manager.run, args=(
            client, registry.select(["endpointslice", "endpoint"]), Options(), stop, 0.0),
            daemon=True).start()
        events: queue.Queue = queue.Queue()
        watch = client.watch(SLICES, {"labelSelector": "kubernetes.io/service-name=bench"})
        threading.Thread(target=lambda: [events.put((time.monotonic(), t, o))
                                         for t, o in watch], daemon=True).start()
        began = time.monotonic()
        client.create(f"/api/v1/namespaces/{NS}/services", {
            "metadata": {"name": "bench"},
            "spec": {"selector": {"app": "bench"}, "ports": [{"port": 80}]}})
        counts: dict[str, int] = {}
        while sum(counts.values()) < args.pods:
            at, _, obj = events.get(timeout=60)
            counts[obj["metadata"]["name"]] = len(obj.get("endpoints") or [])
        print(f"service of {args.pods} pods: all in {len(counts)} slices after "
              f"{(at - began) * 1000:.0f} ms")
        flips = []
        for n in range(args.flips):
            ready = n % 2 == 1
            began = time.monotonic()
            set_ready(client, "p0", "198.18.2.1", ready)
            while True:
                at, _, obj = events.get(timeout=60)
                p0 = [e for e in obj.get("endpoints") or []
                      if e["targetRef"]["name"] == "p0"]
                if p0 and p0[0]["conditions"]["ready"] is ready:
                    flips.append(at - began)
                    break
        print(f"readiness flip -> slice updated ({args.flips} flips): {ms(flips)}")
        watch.close()
    finally:
        stop.set()
        client.close()
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
