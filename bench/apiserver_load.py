"""Load on any Kubernetes API server (by URL, CA and token), and pyapiserver against
kube-apiserver + etcd under the same load (issue 28).

One server:   .venv/bin/python bench/apiserver_load.py --url https://h:p --ca ca.crt --token T
Side by side: .venv/bin/python bench/apiserver_load.py --compare [--rounds 2] [--workers 2]
              [--baseline DIR]

The suite, in a fresh namespace: pod creates at 1, 4, 16 and 64 keep-alive HTTPS connections
(creates/s and p99; 5,000 pods in all), GET p99 of one pod, LIST of the 5,000 pods p50/p99, and
watch fan-out: 20 and 200 watchers of one ConfigMap while it is patched (events delivered per
second, p99 from the patch being sent to each watcher reading it). --compare starts each server
on a fresh database in turn (pyapiserver on its SQLite file; kube-apiserver from
/var/cache/pycontainer-tests/refbin on Debian's etcd, one member, fsync per write as both do),
runs the suite, adds the server's RSS (etcd's too) and storage bytes, alternates the two
`--rounds` times and prints every figure with the ratio pyapiserver / kube-apiserver.
--baseline DIR adds a third server in each round, pyapiserver from another source tree (say
`git archive` of an older commit), so that a change is measured against the code before it
under the same load.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import selectors
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

KUBE_APISERVER = "/var/cache/pycontainer-tests/refbin/kube-apiserver"
CREATE_PHASES = ((1, 500), (4, 1000), (16, 1500), (64, 2000))  # (connections, pods): 5,000
WATCH_PHASES = ((20, 500), (200, 100))                          # (watchers, patches)
GETS = 2000
LISTS = 20


@dataclass(frozen=True)
class Target:
    url: str
    ca: str
    token: str


class Conn:
    """One keep-alive HTTPS connection."""

    def __init__(self, target: Target):
        host, port = target.url.removeprefix("https://").rsplit(":", 1)
        ctx = ssl.create_default_context(cafile=target.ca)
        self._conn = http.client.HTTPSConnection(host.strip("[]"), int(port), context=ctx,
                                                 timeout=120)
        self._headers = {"Authorization": "Bearer " + target.token,
                         "Accept": "application/json"}

    def request(self, method: str, path: str, body: object = None,
                content_type: str = "application/json") -> tuple[int, bytes]:
        headers = dict(self._headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        self._conn.request(method, path, data, headers)
        resp = self._conn.getresponse()
        return resp.status, resp.read()

    def stream(self, path: str) -> http.client.HTTPResponse:
        self._conn.request("GET", path, headers=self._headers)
        return self._conn.getresponse()

    def close(self) -> None:
        self._conn.close()


def p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def pod(name: str) -> dict:
    """About 2.4 KB of JSON once the server has defaulted it. Bound to a node already, so that
    pyapiserver's built-in scheduler (kube-apiserver runs none here) does not write to it."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "load", "tier": "bench"}},
            "spec": {"nodeName": "bench-node", "automountServiceAccountToken": False,
                     "containers": [{
                         "name": "c", "image": "registry.k8s.io/pause:3.10",
                         "env": [{"name": f"E{i}", "value": "v" * 16} for i in range(8)]}]}}


def setup(target: Target, namespace: str) -> None:
    c = Conn(target)
    try:
        code, body = c.request("POST", "/api/v1/namespaces", {
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        assert code == 201, body
        # kube-apiserver's ServiceAccount admission wants the default account, which its
        # controller manager (not running here) would create; pyapiserver makes it itself.
        code, body = c.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts", {
            "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}})
        assert code in (201, 409), body
    finally:
        c.close()


def tls_connect(target: Target) -> tuple[ssl.SSLSocket, str]:
    """A TLS connection to the server, and its host as the Host header names it."""
    host, port = target.url.removeprefix("https://").rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=target.ca)
    sock = socket.create_connection((host.strip("[]"), int(port)), 120)
    return ctx.wrap_socket(sock, server_hostname=host.strip("[]")), host


class RawConn:
    """One keep-alive HTTPS connection that sends prepared bytes and reads the answer with
    the least Python: the creates' client, whose CPU competes with the server's for the
    machine's 2 cores (http.client and a json.dumps per pod cost ~0.4 ms of it per create)."""

    def __init__(self, target: Target):
        self._sock, host = tls_connect(target)
        self._file = self._sock.makefile("rb")
        self._head = (f"Host: {host}\r\nAuthorization: Bearer {target.token}\r\n"
                      "Accept: application/json\r\nContent-Type: application/json\r\n"
                      ).encode()

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        self._sock.sendall(b"POST %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n%s" % (
            path.encode(), self._head, len(body), body))
        f = self._file
        code = int(f.readline()[9:12])
        length, chunked = -1, False
        while (line := f.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
        if not chunked:
            return code, f.read(length)
        parts = []
        while size := int(f.readline().split(b";")[0], 16):
            parts.append(f.read(size))
            f.readline()
        f.readline()
        return code, b"".join(parts)

    def close(self) -> None:
        self._file.close()
        self._sock.close()


def creates(target: Target, namespace: str, connections: int, count: int,
            first: int) -> tuple[float, float]:
    """creates/s and p99 seconds of `count` pod creates spread over `connections`."""
    latencies: list[float] = []
    lock = threading.Lock()
    path = f"/api/v1/namespaces/{namespace}/pods"
    template = json.dumps(pod("NAME")).encode()

    def worker(n: int) -> None:
        c = RawConn(target)
        mine = []
        try:
            for i in range(first + n, first + count, connections):
                body = template.replace(b'"NAME"', b'"p%05d"' % i, 1)
                t = time.perf_counter()
                code, answer = c.post(path, body)
                mine.append(time.perf_counter() - t)
                assert code == 201, answer[:300]
        finally:
            c.close()
            with lock:
                latencies.extend(mine)

    start = time.perf_counter()
    with ThreadPoolExecutor(connections) as pool:
        for f in [pool.submit(worker, n) for n in range(connections)]:
            f.result()
    return count / (time.perf_counter() - start), p(latencies, 0.99)


def reads(target: Target, namespace: str) -> dict[str, float]:
    c = Conn(target)
    try:
        gets = []
        for _ in range(GETS):
            t = time.perf_counter()
            code, _ = c.request("GET", f"/api/v1/namespaces/{namespace}/pods/p00000")
            gets.append(time.perf_counter() - t)
            assert code == 200
        lists = []
        for _ in range(LISTS):
            t = time.perf_counter()
            code, body = c.request("GET", f"/api/v1/namespaces/{namespace}/pods")
            lists.append(time.perf_counter() - t)
            assert code == 200 and len(json.loads(body)["items"]) == 5000
    finally:
        c.close()
    return {"get_p99_ms": p(gets, 0.99) * 1e3, "list_p50_ms": p(lists, 0.5) * 1e3,
            "list_p99_ms": p(lists, 0.99) * 1e3}


class WatchStream:
    """A watch read straight off its TLS socket: the readers of 200 watches are one thread
    on a selector, not 200 threads parsing JSON. With http.client and a thread per watch the
    client spent ~130 µs of CPU per event it read, more than either server spent sending it,
    so the fan-out figure measured the client."""
    STAMP = re.compile(rb'"t":"([0-9.]+)"')

    def __init__(self, target: Target, path: str):
        self.sock, host = tls_connect(target)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json"
                          f"\r\nAuthorization: Bearer {target.token}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("watch closed before its headers")
            head += data
        head, self._raw = head.split(b"\r\n\r\n", 1)
        status = head.split(b"\r\n", 1)[0]
        assert b" 200 " in status + b" ", head
        assert b"chunked" in head.lower(), head
        self.sock.setblocking(False)
        self._body = b""     # chunk payloads not yet ending in a whole line
        self._need = 0       # bytes left of the current chunk's payload (+2 for its CRLF)
        self.stamps: list[float] = []

    def read(self, now: float) -> bool:
        """Takes what the socket has (until TLS wants more, so nothing stays decrypted and
        unread behind the selector's back); False once the server ended the watch."""
        try:
            while True:
                data = self.sock.recv(262144)
                if not data:
                    return False
                self._raw += data
        except (ssl.SSLWantReadError, BlockingIOError):
            pass
        self._unchunk()
        cut = self._body.rfind(b"\n") + 1
        if cut:
            self.stamps.extend(now - float(m) for m in self.STAMP.findall(self._body, 0, cut))
            self._body = self._body[cut:]
        return True

    def _unchunk(self) -> None:
        raw, pos = self._raw, 0
        while True:
            if self._need:
                take = min(self._need, len(raw) - pos)
                self._body += raw[pos:pos + take]
                self._need -= take
                pos += take
                if self._need:
                    break
                self._body = self._body[:-2]  # the chunk's CRLF
                continue
            end = raw.find(b"\r\n", pos)
            if end < 0:
                break
            self._need = int(raw[pos:end].split(b";")[0], 16) + 2
            pos = end + 2
        self._raw = raw[pos:]


def watch_fanout(target: Target, namespace: str, watchers: int,
                 patches: int) -> tuple[float, float]:
    """Events delivered per second and p99 delivery latency (seconds) while one ConfigMap is
    patched `patches` times with `watchers` watching it."""
    c = Conn(target)
    name = f"w{watchers}"
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    code, body = c.request("POST", path, {"apiVersion": "v1", "kind": "ConfigMap",
                                          "metadata": {"name": name}, "data": {"t": "0"}})
    assert code == 201, body
    rv = json.loads(body)["metadata"]["resourceVersion"]
    streams = [WatchStream(target, f"{path}?watch=1&fieldSelector=metadata.name%3D{name}"
                                   f"&resourceVersion={rv}&timeoutSeconds=300")
               for _ in range(watchers)]

    def read_all() -> None:
        with selectors.DefaultSelector() as selector:
            for w in streams:
                selector.register(w.sock, selectors.EVENT_READ, w)
            open_ = set(streams)
            while open_:
                for key, _ in selector.select(120):
                    w = key.data
                    if not w.read(time.time()) or len(w.stamps) >= patches:
                        selector.unregister(w.sock)
                        open_.discard(w)

    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    start = time.perf_counter()
    try:
        for _ in range(patches):
            code, body = c.request("PATCH", f"{path}/{name}", {"data": {"t": repr(time.time())}},
                                   "application/merge-patch+json")
            assert code == 200, body
        reader.join(timeout=300)
        elapsed = time.perf_counter() - start
    finally:
        for w in streams:
            w.sock.close()
        c.close()
    delivered = [x for w in streams for x in w.stamps]
    assert len(delivered) == watchers * patches, (len(delivered), watchers * patches)
    return len(delivered) / elapsed, p(delivered, 0.99)


def suite(target: Target, creates_only: bool = False,
          cpu: Callable[[], float] | None = None) -> dict[str, float]:
    """`cpu`: the server's CPU seconds so far, for its CPU per create (less bent by the
    machine's load than the rates are)."""
    namespace = "load-" + uuid.uuid4().hex[:6]
    setup(target, namespace)
    out: dict[str, float] = {}
    first = 0
    for connections, count in CREATE_PHASES:
        used = cpu() if cpu else 0.0
        rate, p99 = creates(target, namespace, connections, count, first)
        first += count
        out[f"creates_per_s_{connections}"] = rate
        out[f"create_p99_ms_{connections}"] = p99 * 1e3
        if cpu:
            out[f"cpu_ms_per_create_{connections}"] = (cpu() - used) / count * 1e3
    if creates_only:
        return out
    out.update(reads(target, namespace))
    for watchers, patches in WATCH_PHASES:
        rate, p99 = watch_fanout(target, namespace, watchers, patches)
        out[f"watch_events_per_s_{watchers}"] = rate
        out[f"watch_p99_ms_{watchers}"] = p99 * 1e3
    return out


# --compare: the two servers on fresh databases


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_children(pids: list[int]) -> list[int]:
    """The processes and their children (the workers of pyapiserver --workers)."""
    children = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) in pids:
                    children.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue  # not a process, or gone
    return pids + children


def rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in with_children(pids):
        with open(f"/proc/{pid}/status") as f:
            total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return total / 1024


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU of the processes and their children (the workers, etcd's own)."""
    total = 0
    for pid in with_children(pids):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def du(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def wait_ready(target: Target, procs: list[subprocess.Popen], log: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any(proc.poll() is not None for proc in procs):
            break
        try:
            c = Conn(target)
            try:
                if c.request("GET", "/readyz")[0] == 200:
                    return
            finally:
                c.close()
        except OSError:
            pass
        time.sleep(0.2)
    with open(log, errors="replace") as f:
        raise SystemExit(f"server did not become ready: {f.read()[-2000:]}")


class Running:
    """A server under test: its processes, target, and what to measure on it."""

    def __init__(self, procs: list[subprocess.Popen], target: Target, storage: str):
        self.procs, self.target, self.storage = procs, target, storage

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def start_pyapiserver(root: str, token: str, extra: list[str] | None = None,
                      source: str = "") -> Running:
    """On <root>/py, SQLite unless `extra` flags say otherwise (--etcd-servers); the code of
    the `source` tree when given, run with this virtualenv's Python."""
    data = os.path.join(root, "py")
    os.makedirs(data)
    tokens = os.path.join(root, "tokens.csv")
    log = os.path.join(root, "py.log")
    port = free_port()
    command = [os.path.join(REPO, ".venv/bin/pyapiserver")]
    env = None
    if source:
        command = [os.path.join(REPO, ".venv/bin/python"), "-c",
                   "import sys; from apiserver.cli import main; sys.exit(main())"]
        env = {**os.environ, "PYTHONPATH": source}
    with open(log, "wb") as out:
        proc = subprocess.Popen([*command, "--bind-address",
                                 "127.0.0.1", "--port", str(port), "--data-dir", data,
                                 "--token-auth-file", tokens, *(extra or [])], stdout=out,
                                stderr=subprocess.STDOUT, env=env, cwd=source or None)
    target = Target(f"https://127.0.0.1:{port}", os.path.join(data, "pki", "ca.crt"), token)
    deadline = time.monotonic() + 60
    while not os.path.exists(target.ca) and time.monotonic() < deadline:
        time.sleep(0.1)
    wait_ready(target, [proc], log)
    return Running([proc], target, data)


def start_kube(root: str, token: str) -> Running:
    from apiserver.pki.certificates import ensure_pki
    from apiserver.pki.serviceaccount_tokens import ensure_signing_key
    pki = ensure_pki(os.path.join(root, "kpki"), "127.0.0.1", "10.96.0.1")
    sa_key = ensure_signing_key(pki.directory)
    etcd_dir = os.path.join(root, "etcd")
    client, peer, port = free_port(), free_port(), free_port()
    log = os.path.join(root, "kube.log")
    with open(log, "wb") as out:
        etcd = subprocess.Popen(
            ["etcd", "--name", "m", "--data-dir", etcd_dir,
             "--listen-client-urls", f"http://127.0.0.1:{client}",
             "--advertise-client-urls", f"http://127.0.0.1:{client}",
             "--listen-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-cluster", f"m=http://127.0.0.1:{peer}", "--log-level", "warn"],
            stdout=out, stderr=subprocess.STDOUT)
        kube = subprocess.Popen(
            [KUBE_APISERVER, "--etcd-servers", f"http://127.0.0.1:{client}",
             "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
             "--secure-port", str(port), "--cert-dir", os.path.join(root, "kcerts"),
             "--tls-cert-file", pki.server_cert, "--tls-private-key-file", pki.server_key,
             "--client-ca-file", pki.ca_cert,
             "--token-auth-file", os.path.join(root, "tokens.csv"),
             "--service-account-key-file", sa_key, "--service-account-signing-key-file", sa_key,
             "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
             "--authorization-mode", "RBAC", "--service-cluster-ip-range", "10.96.0.0/12",
             "--profiling=false", "--v", "0"],
            stdout=out, stderr=subprocess.STDOUT)
    target = Target(f"https://127.0.0.1:{port}", pki.ca_cert, token)
    running = Running([kube, etcd], target, etcd_dir)
    try:
        wait_ready(target, running.procs, log)
    except BaseException:
        running.stop()
        raise
    return running


def compare(rounds: int, workers: int, baseline: str = "", creates_only: bool = False) -> None:
    token = "load-" + uuid.uuid4().hex
    servers = [("py", lambda root, token: start_pyapiserver(
        root, token, ["--workers", str(workers)]))]
    if baseline:
        servers.append(("before", lambda root, token: start_pyapiserver(
            root, token, ["--workers", str(workers)], os.path.abspath(baseline))))
    servers.append(("kube", start_kube))
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in servers}
    for _ in range(rounds):
        for name, start in servers:
            root = tempfile.mkdtemp(prefix=f"apiserver-load-{name}-")
            try:
                with open(os.path.join(root, "tokens.csv"), "w") as f:
                    f.write(f'{token},load,uid-load,"system:masters"\n')
                running = start(root, token)
                try:
                    pids = [proc.pid for proc in running.procs]
                    figures = suite(running.target, creates_only,
                                    lambda: cpu_seconds(pids))
                    figures["rss_mib"] = rss_mib([proc.pid for proc in running.procs])
                    figures["storage_mb"] = du(running.storage) / 1e6
                finally:
                    running.stop()
            finally:
                shutil.rmtree(root, ignore_errors=True)
            results[name].append(figures)
            print(name, json.dumps({k: round(v, 2) for k, v in figures.items()}), flush=True)
    before = f"{'before':>14}{'ratio':>8}" if baseline else ""
    print(f"\n{'':26}{'pyapiserver':>14}{'kube+etcd':>14}{'ratio':>8}{before}   "
          f"({os.getloadavg()[0]:.2f} load, {os.cpu_count()} CPUs, best of {rounds}, "
          f"{workers} pyapiserver workers)")
    for key in results["py"][0]:
        lower_better = not key.endswith("per_s") and "per_s_" not in key
        pick = min if lower_better else max
        py = pick(r[key] for r in results["py"])
        kube = pick(r[key] for r in results["kube"])
        line = f"{key:26}{py:14.2f}{kube:14.2f}{py / kube if kube else 0:8.2f}"
        if baseline:
            old = pick(r[key] for r in results["before"])
            line += f"{old:14.2f}{old / kube if kube else 0:8.2f}"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="https://host:port of the server to load")
    parser.add_argument("--ca", help="CA bundle that verifies it")
    parser.add_argument("--token", help="a bearer token of a system:masters user")
    parser.add_argument("--compare", action="store_true",
                        help="pyapiserver and kube-apiserver + etcd, alternated, fresh databases")
    parser.add_argument("--rounds", type=int, default=1, help="alternations with --compare")
    parser.add_argument("--workers", type=int, default=1,
                        help="pyapiserver --workers with --compare (default: %(default)s)")
    parser.add_argument("--baseline", default="",
                        help="with --compare, also pyapiserver from this source tree")
    parser.add_argument("--creates-only", action="store_true",
                        help="only the create phases (and RSS, storage with --compare)")
    args = parser.parse_args()
    if args.compare:
        compare(args.rounds, args.workers, args.baseline, args.creates_only)
    elif args.url and args.ca and args.token:
        print(json.dumps(suite(Target(args.url, args.ca, args.token), args.creates_only),
                         indent=1))
    else:
        parser.error("--url, --ca and --token, or --compare")


if __name__ == "__main__":
    main()
