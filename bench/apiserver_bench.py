"""Benchmark of pyapiserver: creates/s, list latency at 1,000 pods, watch fan-out to 20 watchers.

Starts a real pyapiserver on 127.0.0.1 (temp data dir), drives it over HTTPS with keep-alive
connections (http.client, so that client overhead stays small) and prints the figures and the
server's resident memory. Run: .venv/bin/python bench/apiserver_bench.py [--pods N]
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from stats import rss_kib

TOKEN = "bench-" + uuid.uuid4().hex
WATCHERS = 20


def start(data_dir: str) -> tuple[subprocess.Popen, int]:
    tokens = os.path.join(data_dir, "tokens.csv")
    with open(tokens, "w") as f:
        f.write(f'{TOKEN},bench,bench,"system:masters"\n')
    proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "pyapiserver"),
                             "--bind-address", "127.0.0.1", "--port", "0", "--data-dir",
                             data_dir, "--token-auth-file", tokens],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    return proc, int(line.split()[2].rstrip(",").rsplit(":", 1)[1])


class Conn:
    def __init__(self, port: int, data_dir: str):
        ctx = ssl.create_default_context(cafile=os.path.join(data_dir, "pki", "ca.crt"))
        self.c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)

    def call(self, method: str, path: str, body: object = None,
             accept: str = "application/json") -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        self.c.request(method, path, body=data, headers={
            "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json",
            "Accept": accept})
        r = self.c.getresponse()
        return r.status, r.read()


def pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"b": "1"}},
            "spec": {"schedulerName": "none", "containers": [
                {"name": "c", "image": "busybox:1.36", "command": ["sleep", "3600"],
                 "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--fanout-events", type=int, default=200)
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="pyapiserver-bench-")
    proc, port = start(data_dir)
    try:
        print(f"pyapiserver on 127.0.0.1:{port}, idle RSS {rss_kib(proc.pid) // 1024} MiB")
        # creates/s: one connection (sequential) and 4 connections (concurrent writers)
        c = Conn(port, data_dir)
        n_seq = args.pods // 2
        t0 = time.perf_counter()
        for i in range(n_seq):
            status, _ = c.call("POST", "/api/v1/namespaces/default/pods", pod(f"p{i}"))
            assert status == 201, status
        seq = n_seq / (time.perf_counter() - t0)

        def create_range(start: int, end: int) -> None:
            cc = Conn(port, data_dir)
            for i in range(start, end):
                assert cc.call("POST", "/api/v1/namespaces/default/pods",
                               pod(f"p{i}"))[0] == 201
        rest = args.pods - n_seq
        t0 = time.perf_counter()
        with ThreadPoolExecutor(4) as ex:
            step = rest // 4
            list(ex.map(lambda k: create_range(n_seq + k * step,
                                               n_seq + (k + 1) * step if k < 3 else args.pods),
                        range(4)))
        par = rest / (time.perf_counter() - t0)
        print(f"creates/s: {seq:.0f} sequential (1 connection), {par:.0f} with 4 connections "
              f"(each write fsync'd before the answer)")

        def timed(path: str, accept: str = "application/json", n: int = 10) -> float:
            times = []
            for _ in range(n):
                t = time.perf_counter()
                status, body = c.call("GET", path, accept=accept)
                times.append(time.perf_counter() - t)
                assert status == 200
            return statistics.median(times) * 1000
        print(f"list {args.pods} pods: {timed('/api/v1/namespaces/default/pods'):.0f} ms JSON, "
              f"{timed('/api/v1/pods', 'application/json;as=Table;v=v1;g=meta.k8s.io'):.0f} ms "
              f"Table (kubectl get -A), "
              f"{timed('/api/v1/namespaces/default/pods?limit=500'):.0f} ms first page of 500, "
              f"{timed('/api/v1/pods?fieldSelector=spec.nodeName%3Dnone'):.1f} ms "
              f"fieldSelector matching none (median of 10)")
        print(f"RSS with {args.pods} pods: {rss_kib(proc.pid) // 1024} MiB")

        # watch fan-out: 20 watchers, N modifications, delivery latency to every watcher
        status, body = c.call("GET", "/api/v1/namespaces/default/pods?limit=1")
        rv = json.loads(body)["metadata"]["resourceVersion"]
        sent: dict[str, float] = {}
        latencies: list[float] = []
        lock = threading.Lock()
        done = threading.Barrier(WATCHERS + 1)
        ready = threading.Barrier(WATCHERS + 1)

        def watcher() -> None:
            ctx = ssl.create_default_context(cafile=os.path.join(data_dir, "pki", "ca.crt"))
            w = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
            w.request("GET", f"/api/v1/namespaces/default/pods?watch=1&resourceVersion={rv}"
                      f"&timeoutSeconds=120", headers={"Authorization": f"Bearer {TOKEN}"})
            r = w.getresponse()
            ready.wait()
            got = 0
            while got < args.fanout_events:
                line = r.readline()
                if not line:
                    break
                ev = json.loads(line)
                value = (ev["object"]["metadata"].get("annotations") or {}).get("bench")
                if value is None:
                    continue
                now = time.perf_counter()
                with lock:
                    latencies.append(now - sent[value])
                got += 1
            w.close()
            done.wait()
        threads = [threading.Thread(target=watcher, daemon=True) for _ in range(WATCHERS)]
        for t in threads:
            t.start()
        ready.wait()
        t0 = time.perf_counter()
        for i in range(args.fanout_events):
            key = str(i)
            sent[key] = time.perf_counter()
            c.c.request("PATCH", f"/api/v1/namespaces/default/pods/p{i % args.pods}",
                        body=json.dumps({"metadata": {"annotations": {"bench": key}}}),
                        headers={"Authorization": f"Bearer {TOKEN}",
                                 "Content-Type": "application/merge-patch+json"})
            r = c.c.getresponse()
            r.read()
        done.wait()
        total = time.perf_counter() - t0
        latencies.sort()
        p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa
        print(f"watch fan-out: {args.fanout_events} updates to {WATCHERS} watchers = "
              f"{len(latencies)} deliveries in {total:.2f} s ({len(latencies) / total:.0f} "
              f"events/s), latency p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms")
        print(f"RSS after fan-out: {rss_kib(proc.pid) // 1024} MiB, database "
              f"{sum(os.path.getsize(os.path.join(data_dir, f)) for f in os.listdir(data_dir) if f.startswith('state.db')) // 1024} KiB")
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
