"""pyapiserver on etcd beside pyapiserver on SQLite (and kube-apiserver on etcd), same writes.

The write mix of a scheduling burst, each phase from --connections keep-alive HTTPS
connections: pod creates (unscheduled, for a scheduler nobody runs), then per pod a binding
plus its Scheduled event (what a scheduler writes), a status patch (what a kubelet writes),
and Lease renewals (PUT with the resourceVersion last read, as every node does every 10 s).
Each phase prints its rate, latency p50/p99 and the server process's CPU per call (the
phase's CPU over its calls: a binding and its event share one figure; etcd's own is not in
it). Sides, alternated round by round, each on a fresh database: pyapiserver on etcd
(Debian's etcd, --members on loopback, fsync per write),
the same from another source tree with --baseline DIR (its apiserver/ first on PYTHONPATH),
pyapiserver on SQLite, and with --kube kube-apiserver on its own etcd of one member.

    .venv/bin/python bench/apiserver_etcd_bench.py [--pods N] [--rounds R] [--baseline DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from apiserver_load import (KUBE_APISERVER, Conn, Running, Target, free_port, p, setup,
                            start_kube, start_pyapiserver)

NAMESPACE = "bench"
NODES = 10


def start_etcd(root: str, members: int) -> tuple[list[subprocess.Popen], str]:
    ports = [(free_port(), free_port()) for _ in range(members)]
    initial = ",".join(f"m{i}=http://127.0.0.1:{peer}" for i, (_, peer) in enumerate(ports))
    procs, urls = [], []
    for i, (client, peer) in enumerate(ports):
        url = f"http://127.0.0.1:{client}"
        urls.append(url)
        procs.append(subprocess.Popen(
            ["etcd", "--name", f"m{i}", "--data-dir", os.path.join(root, f"m{i}"),
             "--listen-client-urls", url, "--advertise-client-urls", url,
             "--listen-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-cluster", initial, "--initial-cluster-state", "new",
             "--log-level", "warn"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    deadline = time.monotonic() + 60
    for url in urls:
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as r:
                    if b'"true"' in r.read():
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                for proc in procs:
                    proc.terminate()
                    proc.wait()
                raise SystemExit("etcd did not become healthy")
            time.sleep(0.1)
    return procs, ",".join(urls)


def py_on_etcd(members: int, source: str = "") -> Callable[[str, str], Running]:
    def start(root: str, token: str) -> Running:
        etcd, servers = start_etcd(os.path.join(root, "etcd"), members)
        try:
            running = start_pyapiserver(root, token, ["--etcd-servers", servers], source)
        except BaseException:
            for proc in etcd:
                proc.terminate()
                proc.wait()
            raise
        return Running(running.procs + etcd, running.target, os.path.join(root, "etcd"))
    return start


def pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"schedulerName": "bench-nobody", "automountServiceAccountToken": False,
                     "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                                     "env": [{"name": f"E{i}", "value": "v" * 16}
                                             for i in range(8)]}]}}


def binding(name: str, node: str) -> dict:
    return {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}}


def event(name: str, node: str) -> dict:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{name}.{uuid.uuid4().hex[:16]}"},
            "involvedObject": {"kind": "Pod", "namespace": NAMESPACE, "name": name,
                               "apiVersion": "v1"},
            "reason": "Scheduled", "type": "Normal", "firstTimestamp": now,
            "lastTimestamp": now, "count": 1, "source": {"component": "bench-scheduler"},
            "message": f"Successfully assigned {NAMESPACE}/{name} to {node}"}


def running_status() -> dict:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {"status": {"phase": "Running", "podIP": "198.18.0.2", "startTime": now,
                       "conditions": [{"type": t, "status": "True", "lastTransitionTime": now}
                                      for t in ("Initialized", "ContainersReady", "Ready")]}}


def lease(name: str) -> dict:
    now = time.time()  # microseconds, as a kubelet's renewTime: every renewal is a write
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                     "renewTime": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) +
                     f".{int(now % 1 * 1e6):06}Z"}}


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def phase(target: Target, connections: int, items: list,
          write: Callable[[Conn, object, dict], list[tuple[str, float]]], pid: int) -> dict:
    """Spreads `items` over the connections; write returns (label, seconds) per call.
    Result: label -> latencies, "wall" -> the phase's seconds, "cpu" -> the server's (pid's)
    CPU seconds in it."""
    samples: dict[str, list[float]] = {}
    lock = threading.Lock()

    def worker(n: int) -> None:
        c = Conn(target)
        mine: list[tuple[str, float]] = []
        state: dict = {}
        try:
            for item in items[n::connections]:
                mine.extend(write(c, item, state))
        finally:
            c.close()
            with lock:
                for label, seconds in mine:
                    samples.setdefault(label, []).append(seconds)

    start, cpu = time.perf_counter(), cpu_seconds(pid)
    with ThreadPoolExecutor(connections) as pool:
        for f in [pool.submit(worker, n) for n in range(connections)]:
            f.result()
    return {"wall": time.perf_counter() - start, "cpu": cpu_seconds(pid) - cpu, **samples}


def timed(c: Conn, method: str, path: str, body: object, want: int,
          content_type: str = "application/json") -> tuple[float, bytes]:
    t = time.perf_counter()
    code, out = c.request(method, path, body, content_type)
    seconds = time.perf_counter() - t
    if code != want:
        raise SystemExit(f"{method} {path}: {code} {out[:300]!r}")
    return seconds, out


def suite(target: Target, pid: int, pods: int, connections: int) -> dict[str, dict]:
    setup(target, NAMESPACE)
    base = f"/api/v1/namespaces/{NAMESPACE}"
    names = [f"p{i:05}" for i in range(pods)]
    # A few per connection, renewed in turn, as nodes renew theirs a while apart; a multiple
    # of the connections, so that lease i (and each of its renewals) is connection i's.
    leases = [f"node-{i:03}" for i in range(max(pods // 4 // connections, 1) * connections)]
    lease_base = f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases"

    def create(c: Conn, name, state) -> list[tuple[str, float]]:
        return [("POST pods", timed(c, "POST", f"{base}/pods", pod(name), 201)[0])]

    def bind(c: Conn, name, state) -> list[tuple[str, float]]:
        node = f"node-{hash(name) % NODES:03}"
        b = timed(c, "POST", f"{base}/pods/{name}/binding", binding(name, node), 201)[0]
        e = timed(c, "POST", f"{base}/events", event(name, node), 201)[0]
        return [("POST binding", b), ("POST events", e)]

    def patch(c: Conn, name, state) -> list[tuple[str, float]]:
        return [("PATCH pods/status", timed(c, "PATCH", f"{base}/pods/{name}/status",
                                            running_status(), 200,
                                            "application/merge-patch+json")[0])]

    def renew(c: Conn, name, state) -> list[tuple[str, float]]:
        if name not in state:
            seconds, body = timed(c, "POST", lease_base, lease(name), 201)
            state[name] = json_rv(body)
            return [("POST leases", seconds)]
        obj = lease(name)
        obj["metadata"]["resourceVersion"] = state[name]
        seconds, body = timed(c, "PUT", f"{lease_base}/{name}", obj, 200)
        state[name] = json_rv(body)
        return [("PUT leases", seconds)]

    renewals = [leases[i % len(leases)] for i in range(pods)]
    return {"creates": phase(target, connections, names, create, pid),
            "bindings": phase(target, connections, names, bind, pid),
            "status": phase(target, connections, names, patch, pid),
            "leases": phase(target, connections, leases + renewals, renew, pid)}


def json_rv(body: bytes) -> str:
    return json.loads(body)["metadata"]["resourceVersion"]


def summary(figures: dict[str, dict]) -> dict[str, tuple[float, float, float, float]]:
    """label -> (calls/s over its phase, p50 ms, p99 ms, server CPU ms per call of the
    phase)."""
    out = {}
    for ph in figures.values():
        calls = sum(len(v) for k, v in ph.items() if k not in ("wall", "cpu"))
        for label, samples in ph.items():
            if label not in ("wall", "cpu"):
                out[label] = (len(samples) / ph["wall"], p(samples, 0.5) * 1e3,
                              p(samples, 0.99) * 1e3, ph["cpu"] / calls * 1e3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--members", type=int, default=1, help="etcd members (default 1)")
    parser.add_argument("--baseline", default="",
                        help="another source tree: its pyapiserver on etcd as a side too")
    parser.add_argument("--kube", action="store_true",
                        help="kube-apiserver on etcd as a side too")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    sides: list[tuple[str, Callable[[str, str], Running]]] = [
        ("py-etcd", py_on_etcd(args.members))]
    if args.baseline:
        sides.append(("py-etcd before", py_on_etcd(args.members,
                                                   os.path.abspath(args.baseline))))
    if not args.no_sqlite:
        sides.append(("py-sqlite", lambda root, token: start_pyapiserver(root, token)))
    if args.kube:
        if not os.path.exists(KUBE_APISERVER):
            raise SystemExit(f"--kube: {KUBE_APISERVER} is missing (tests unpack it)")
        sides.append(("kube-etcd", start_kube))
    token = "bench-" + uuid.uuid4().hex
    print(f"{args.pods} pods, {args.connections} connections, etcd {args.members} member(s)")
    for r in range(args.rounds):
        for name, start in sides:
            root = tempfile.mkdtemp(prefix="apiserver-etcd-bench-")
            load = os.getloadavg()[0]
            try:
                with open(os.path.join(root, "tokens.csv"), "w") as f:
                    f.write(f'{token},bench,uid-bench,"system:masters"\n')
                running = start(root, token)
                try:
                    figures = summary(suite(running.target, running.procs[0].pid, args.pods,
                                            args.connections))
                finally:
                    running.stop()
            finally:
                shutil.rmtree(root, ignore_errors=True)
            print(f"round {r + 1} {name} (load {load:.1f} -> {os.getloadavg()[0]:.1f}):")
            for label, (rate, p50, p99, cpu) in figures.items():
                print(f"  {label:18} {rate:7.0f}/s  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  "
                      f"server CPU {cpu:5.2f} ms/call", flush=True)


if __name__ == "__main__":
    sys.exit(main())
