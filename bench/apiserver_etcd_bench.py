"""pyapiserver on etcd vs on SQLite: pod creates/s and create latency p50/p99, same load.

Starts Debian's etcd (3 members on loopback, own ports and data dirs, each write fsync'd by a
quorum) and a pyapiserver on it, then a pyapiserver on its SQLite file; each gets N pod creates
from 4 keep-alive HTTPS connections. Run: .venv/bin/python bench/apiserver_etcd_bench.py [--pods N]
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

TOKEN = "bench-" + uuid.uuid4().hex
CONNECTIONS = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_etcd(root: str, members: int = 3) -> tuple[list[subprocess.Popen], str]:
    ports = [(free_port(), free_port()) for _ in range(members)]
    initial = ",".join(f"m{i}=http://127.0.0.1:{p}" for i, (_, p) in enumerate(ports))
    procs, urls = [], []
    for i, (client, peer) in enumerate(ports):
        url = f"http://127.0.0.1:{client}"
        urls.append(url)
        procs.append(subprocess.Popen(
            ["etcd", "--name", f"m{i}", "--data-dir", os.path.join(root, f"m{i}"),
             "--listen-client-urls", url, "--advertise-client-urls", url,
             "--listen-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-cluster", initial, "--initial-cluster-state", "new"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    deadline = time.monotonic() + 30
    for url in urls:
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as r:
                    if b'"true"' in r.read():
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("etcd did not become healthy")
            time.sleep(0.1)
    return procs, ",".join(urls)


def start_server(data_dir: str, extra: list[str]) -> tuple[subprocess.Popen, int]:
    tokens = os.path.join(data_dir, "tokens.csv")
    os.makedirs(data_dir, exist_ok=True)
    with open(tokens, "w") as f:
        f.write(f'{TOKEN},bench,bench,"system:masters"\n')
    proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "pyapiserver"),
                             "--bind-address", "127.0.0.1", "--port", "0", "--data-dir",
                             data_dir, "--token-auth-file", tokens, *extra],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    return proc, int(line.split()[2].rstrip(",").rsplit(":", 1)[1])


def pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"schedulerName": "none", "containers": [
                {"name": "c", "image": "busybox:1.36", "command": ["sleep", "3600"]}]}}


def creates(port: int, data_dir: str, pods: int) -> tuple[float, list[float]]:
    ctx = ssl.create_default_context(cafile=os.path.join(data_dir, "pki", "ca.crt"))

    def run(k: int) -> list[float]:
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
        times = []
        for i in range(k, pods, CONNECTIONS):
            t = time.perf_counter()
            conn.request("POST", "/api/v1/namespaces/default/pods", body=json.dumps(
                pod(f"p{i}")).encode(), headers={"Authorization": f"Bearer {TOKEN}",
                                                 "Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            assert r.status == 201, r.status
            times.append(time.perf_counter() - t)
        conn.close()
        return times
    t0 = time.perf_counter()
    with ThreadPoolExecutor(CONNECTIONS) as ex:
        latencies = sorted(t for part in ex.map(run, range(CONNECTIONS)) for t in part)
    return pods / (time.perf_counter() - t0), latencies


def report(name: str, rate: float, latencies: list[float]) -> None:
    def p(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
    print(f"{name}: {rate:.0f} creates/s, latency p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=1000)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="pyapiserver-bench-")
    etcd, servers = start_etcd(os.path.join(root, "etcd"))
    procs: list[subprocess.Popen] = []
    try:
        for name, extra in (("etcd (3 members)", ["--etcd-servers", servers]),
                            ("SQLite", [])):
            data_dir = os.path.join(root, name.split()[0])
            proc, port = start_server(data_dir, extra)
            procs.append(proc)
            report(f"pyapiserver on {name}, {args.pods} pods, {CONNECTIONS} connections",
                   *creates(port, data_dir, args.pods))
            proc.terminate()
            proc.wait()
    finally:
        for proc in procs + etcd:
            if proc.poll() is None:
                proc.terminate()
                proc.wait()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
