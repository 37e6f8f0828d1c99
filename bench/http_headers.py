"""Header parsing without the email package (issue 28): CPU per request on both sides, this tree
against another (--baseline DIR, e.g. a git worktree of the commit before), alternated by round.

.venv/bin/python bench/http_headers.py --baseline /tmp/hdr-old [--rounds 3]

Each round, for each tree in turn: pyapiserver (1 worker, fresh SQLite) from that tree, the
server's CPU (its processes) per pod create over 4 keep-alive connections and per GET of one pod
over 4 connections; then the REST client of that tree (kubeapi.restclient.ApiClient, in a
child process with that tree first on its path) doing GETs against this tree's server, the
child's own CPU per GET. Then the two parsers alone on a typical request and response header
block. Prints each round, the medians and new / old ratios, and the load average."""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import timeit
import uuid
from concurrent.futures import ThreadPoolExecutor

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "bench"))

from apiserver_load import (Conn, Target, cpu_seconds, creates, setup,  # noqa: E402
                            start_pyapiserver)

CONNECTIONS = 4
CREATES = 1500
GETS = 4000
CLIENT_GETS = 3000

# The child that measures a tree's REST client: argv server, ca, token, path, count.
_CLIENT = """
import ssl, sys, time
from kubeapi.kubeconfig import Connection
from kubeapi.restclient import ApiClient
server, ca, token, path, count = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=ca)
api = ApiClient(Connection(server, ctx, ctx, token), "bench")
for _ in range(200):
    api.get(path)
start = time.process_time()
for _ in range(int(count)):
    api.get(path)
print((time.process_time() - start) / int(count) * 1e3)
"""

REQUEST = (b"Host: 127.0.0.1:6443\r\nUser-Agent: kubectl/v1.37.0 (linux/amd64) kubernetes/abc\r\n"
           b"Content-Length: 1234\r\nAccept: application/json, */*\r\n"
           b"Authorization: Bearer 0123456789abcdef0123456789abcdef\r\n"
           b"Content-Type: application/json\r\nKubectl-Command: kubectl apply\r\n"
           b"Kubectl-Session: 4a3f1e2d-1c2b-4a5d-9e8f-7a6b5c4d3e2f\r\n"
           b"Accept-Encoding: gzip\r\n\r\n")
RESPONSE = (b"Audit-Id: 4a3f1e2d-1c2b-4a5d-9e8f-7a6b5c4d3e2f\r\n"
            b"Cache-Control: no-cache, private\r\nContent-Type: application/json\r\n"
            b"X-Kubernetes-Pf-Flowschema-Uid: 4a3f1e2d-1c2b-4a5d-9e8f-7a6b5c4d3e2f\r\n"
            b"X-Kubernetes-Pf-Prioritylevel-Uid: 4a3f1e2d-1c2b-4a5d-9e8f-7a6b5c4d3e2f\r\n"
            b"Date: Mon, 07 Dec 2026 07:00:00 GMT\r\nContent-Length: 2412\r\n\r\n")


def gets(target: Target, path: str) -> None:
    def worker(n: int) -> None:
        c = Conn(target)
        try:
            for _ in range(GETS // CONNECTIONS):
                code, body = c.request("GET", path)
                assert code == 200, body[:300]
        finally:
            c.close()

    with ThreadPoolExecutor(CONNECTIONS) as pool:
        for f in [pool.submit(worker, n) for n in range(CONNECTIONS)]:
            f.result()


def server_side(tree: str, root: str, token: str) -> dict[str, float]:
    """CPU ms per create and per GET of pyapiserver from `tree` ("" for this one)."""
    running = start_pyapiserver(root, token, ["--workers", "1"], tree)
    try:
        pids = [proc.pid for proc in running.procs]
        namespace = "hdr-" + uuid.uuid4().hex[:6]
        setup(running.target, namespace)
        used = cpu_seconds(pids)
        creates(running.target, namespace, CONNECTIONS, CREATES, 0)
        per_create = (cpu_seconds(pids) - used) / CREATES * 1e3
        used = cpu_seconds(pids)
        gets(running.target, f"/api/v1/namespaces/{namespace}/pods/p00000")
        per_get = (cpu_seconds(pids) - used) / GETS * 1e3
    finally:
        running.stop()
    return {"server_cpu_ms_per_create": per_create, "server_cpu_ms_per_get": per_get}


def client_side(tree: str, target: Target, path: str) -> float:
    """The client process's CPU ms per GET with the REST client of `tree`."""
    out = subprocess.run([os.path.join(REPO, ".venv/bin/python"), "-c", _CLIENT, target.url,
                          target.ca, target.token, path, str(CLIENT_GETS)],
                         env={**os.environ, "PYTHONPATH": tree}, cwd=tree,
                         capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def parsers() -> dict[str, float]:
    """µs per header block: http.client's (email) and ours."""
    import http.client

    from kubeapi.http_headers import read_headers
    out = {}
    for name, block in (("request", REQUEST), ("response", RESPONSE)):
        for side, parse in (("email", http.client.parse_headers), ("ours", read_headers)):
            n = 20000
            seconds = min(timeit.repeat(lambda: parse(io.BytesIO(block)), number=n, repeat=3))
            out[f"parse_{name}_us_{side}"] = seconds / n * 1e6
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="the other source tree")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    trees = {"new": REPO, "old": os.path.abspath(args.baseline)}
    token = "hdr-" + uuid.uuid4().hex
    results: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    print(f"load at start: {open('/proc/loadavg').read().strip()}", flush=True)
    for _ in range(args.rounds):
        for name, tree in trees.items():
            root = tempfile.mkdtemp(prefix=f"hdr-bench-{name}-")
            try:
                with open(os.path.join(root, "tokens.csv"), "w") as f:
                    f.write(f'{token},load,uid-load,"system:masters"\n')
                figures = server_side("" if tree == REPO else tree, root, token)
            finally:
                shutil.rmtree(root, ignore_errors=True)
            results[name].append(figures)
        # Both clients against one server of this tree, in turn.
        root = tempfile.mkdtemp(prefix="hdr-bench-client-")
        try:
            with open(os.path.join(root, "tokens.csv"), "w") as f:
                f.write(f'{token},load,uid-load,"system:masters"\n')
            running = start_pyapiserver(root, token, ["--workers", "1"])
            try:
                setup(running.target, "hdrc")
                c = Conn(running.target)
                code, _ = c.request("POST", "/api/v1/namespaces/hdrc/configmaps",
                                    {"metadata": {"name": "c"}, "data": {"k": "v"}})
                c.close()
                assert code == 201
                for name, tree in trees.items():
                    results[name][-1]["client_cpu_ms_per_get"] = client_side(
                        tree, running.target, "/api/v1/namespaces/hdrc/configmaps/c")
            finally:
                running.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)
        for name in trees:
            print(name, json.dumps({k: round(v, 3) for k, v in results[name][-1].items()}),
                  f"load {os.getloadavg()[0]:.2f}", flush=True)
    print(f"\n{'median of ' + str(args.rounds):28}{'new':>10}{'old':>10}{'new/old':>10}")
    for key in results["new"][0]:
        new = statistics.median(r[key] for r in results["new"])
        old = statistics.median(r[key] for r in results["old"])
        print(f"{key:28}{new:10.3f}{old:10.3f}{new / old:10.2f}")
    for key, value in parsers().items():
        print(f"{key:28}{value:10.2f}")
    print(f"load at end: {open('/proc/loadavg').read().strip()}")


if __name__ == "__main__":
    main()
