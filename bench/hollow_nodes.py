"""Hollow nodes (issue 25): N nodes whose pods are recorded, not run, as kubemark's, driving
pyapiserver (SQLite), pyapiserver (etcd) and kube-apiserver (etcd) with the same load.

Side by side: .venv/bin/python bench/hollow_nodes.py --nodes 100 --pods-per-node 30
One server:   .venv/bin/python bench/hollow_nodes.py --url https://h:p --ca ca.crt --token T

Every hollow node, as a kubelet: registers its Node (capacity, addresses, conditions), creates
and renews its Lease every 10 s (PUT), patches its node status every 60 s, lists then watches the
pods bound to it (fieldSelector spec.nodeName=NAME, one watch per node as every kubelet holds)
and answers a new pod with a status patch to Running (podIP, conditions, containerStatuses).
Bare pods are created at --qps (by --creators threads, each waiting for its answers) in a
fresh namespace and scheduled by the server's own scheduler (pyapiserver) or by the real
kube-scheduler (kube-apiserver). Measured: pod startup (create sent -> Running seen by a
watcher of the namespace) p50/p99, client-side latency p99 by verb and resource, and the peak
RSS of the control plane (API server, etcd, kube-scheduler).

One process of threads: a thread per node's watch (a node's watch is the load a kubelet puts on
the server, so each keeps its own connection and field selector; a shared watch would hide the
per-watch filtering cost from the server), and a small pool of keep-alive connections that make
every write, as a kubelet's one HTTP/2 connection multiplexes them: 1,000 nodes cost the server
1,000 watches, not 3,000 connections.
"""
from __future__ import annotations

import argparse
import heapq
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

from apiserver_etcd_bench import start_etcd
from apiserver_load import (REPO, Conn, Running, Target, free_port, p, rss_mib, setup, start_kube,
                            start_pyapiserver)

sys.path.append(os.path.join(REPO, "tests"))   # last: its folders must not shadow packages
from testlib.refbin import refbin  # noqa: E402 - unpacks ../shared/refbin's binaries once

LEASE_SECONDS = 10.0
NODE_STATUS_SECONDS = 60.0
WATCH_SECONDS = 600.0
WRITERS = 16
# Pod creators: each waits for its POST's answer, so --qps needs qps x POST latency of them.
CREATORS = 8
SLO_MUTATING_P99 = 1.0
SLO_POD_STARTUP_P99 = 5.0


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    """A Lease's renewTime is a MicroTime."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def watch_conn(target: Target) -> Conn:
    """A watch's connection: no read timeout short of the watch's own timeoutSeconds, as a
    kubelet's. With Conn's 120 s, 1,000 node watches that saw no pod of theirs for 120 s
    (bookmarks come only once the server's stream is idle) gave up, and each relisted while
    the server still held the old watch: 1,581 reconnects and 2,500 LISTs in 5 minutes."""
    conn = Conn(target)
    conn._conn.timeout = WATCH_SECONDS + 60
    return conn


@dataclass(frozen=True)
class Hollow:
    name: str
    ip: str
    pod_net: int    # the node's /26 of 198.19.0.0/16 as an integer offset

    def pod_ip(self, n: int) -> str:
        host = self.pod_net + 2 + n % 60
        return f"198.19.{host // 256}.{host % 256}"


def hollow(index: int, prefix: str) -> Hollow:
    return Hollow(f"{prefix}-{index:04}", f"198.18.{(index + 1) // 256}.{(index + 1) % 256}",
                  index * 64)


def node_conditions(stamp: str) -> list[dict]:
    quiet = [(kind, "False", reason) for kind, reason in (
        ("MemoryPressure", "KubeletHasSufficientMemory"),
        ("DiskPressure", "KubeletHasNoDiskPressure"), ("PIDPressure", "KubeletHasSufficientPID"))]
    return [{"type": kind, "status": status, "reason": reason, "lastHeartbeatTime": stamp,
             "lastTransitionTime": stamp, "message": ""}
            for kind, status, reason in quiet + [("Ready", "True", "KubeletReady")]]


def node_object(node: Hollow) -> dict:
    stamp = now()
    resources = {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"}
    net = node.pod_net
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": node.name, "labels": {"kubernetes.io/hostname": node.name,
                                                       "kubernetes.io/os": "linux",
                                                       "hollow": "true"}},
            "spec": {"podCIDR": f"198.19.{net // 256}.{net % 256}/26"},
            "status": {"capacity": resources, "allocatable": resources,
                       "conditions": node_conditions(stamp),
                       "addresses": [{"type": "InternalIP", "address": node.ip},
                                     {"type": "Hostname", "address": node.name}],
                       "nodeInfo": {"kubeletVersion": "v1.35.0-hollow", "osImage": "hollow",
                                    "kernelVersion": "hollow", "architecture": "amd64",
                                    "operatingSystem": "linux", "containerRuntimeVersion":
                                    "hollow://0", "machineID": "", "systemUUID": "",
                                    "bootID": "", "kubeProxyVersion": ""}}}


def pod_object(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "hollow"}},
            "spec": {"automountServiceAccountToken": False, "containers": [{
                "name": "c", "image": "registry.k8s.io/pause:3.10",
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}


def running_status(pod: dict, node: Hollow, n: int) -> dict:
    stamp = now()
    ip = node.pod_ip(n)
    conditions = [{"type": kind, "status": "True", "lastTransitionTime": stamp}
                  for kind in ("PodReadyToStartContainers", "Initialized", "Ready",
                               "ContainersReady")]
    return {"status": {"phase": "Running", "hostIP": node.ip, "hostIPs": [{"ip": node.ip}],
                       "podIP": ip, "podIPs": [{"ip": ip}], "startTime": stamp,
                       "conditions": conditions, "containerStatuses": [{
                           "name": c["name"], "image": c["image"], "imageID": "",
                           "containerID": f"hollow://{pod['metadata']['uid']}/{c['name']}",
                           "ready": True, "started": True, "restartCount": 0,
                           "state": {"running": {"startedAt": stamp}}}
                           for c in pod["spec"]["containers"]]}}


class Latencies:
    """Client-side seconds per 'VERB resource', from every thread."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}

    def call(self, conn: Conn, key: str, method: str, path: str, body: object = None,
             content_type: str = "application/json") -> tuple[int, bytes]:
        start = time.perf_counter()
        code, data = conn.request(method, path, body, content_type)
        # setdefault and append are atomic under the GIL: no lock on this hot path
        self.samples.setdefault(key, []).append(time.perf_counter() - start)
        return code, data


@dataclass
class Driver:
    """The hollow nodes and the pods' creator against one server."""

    target: Target
    nodes: list[Hollow]
    namespace: str
    latencies: Latencies = field(default_factory=Latencies)
    stop: threading.Event = field(default_factory=threading.Event)
    writes: queue.Queue = field(default_factory=queue.Queue)
    created: dict[str, float] = field(default_factory=dict)
    scheduled: dict[str, float] = field(default_factory=dict)
    running: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    leases: dict[str, dict] = field(default_factory=dict)
    threads: list[threading.Thread] = field(default_factory=list)
    measure_watches: int = 0

    def _thread(self, target, *args) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)
        t.start()
        self.threads.append(t)

    # writes: one pool of connections for every node

    def _writer(self) -> None:
        conn = Conn(self.target)
        try:
            while True:
                job = self.writes.get()
                if job is None:
                    return
                try:
                    job(conn)
                except (OSError, AssertionError) as e:
                    self.errors.append(f"{type(e).__name__}: {e}"[:300])
                    conn.close()
                    conn = Conn(self.target)
                finally:
                    self.writes.task_done()
        finally:
            conn.close()

    def _check(self, code: int, body: bytes, *ok: int) -> None:
        assert code in ok, f"HTTP {code}: {body[:200]!r}"

    def register(self, node: Hollow, conn: Conn) -> None:
        code, body = self.latencies.call(conn, "POST nodes", "POST", "/api/v1/nodes",
                                         node_object(node))
        self._check(code, body, 201)
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                 "metadata": {"name": node.name, "namespace": "kube-node-lease"},
                 "spec": {"holderIdentity": node.name, "leaseDurationSeconds": 40,
                          "renewTime": now_micro()}}
        code, body = self.latencies.call(
            conn, "POST leases", "POST",
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", lease)
        self._check(code, body, 201)
        self.leases[node.name] = json.loads(body)

    def renew_lease(self, node: Hollow, conn: Conn) -> None:
        lease = self.leases[node.name]
        lease["spec"]["renewTime"] = now_micro()
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node.name}"
        code, body = self.latencies.call(conn, "PUT leases", "PUT", path, lease)
        if code == 409:     # as the kubelet: read the current one, renew on the next tick
            code, body = self.latencies.call(conn, "GET leases", "GET", path)
        self._check(code, body, 200)
        self.leases[node.name] = json.loads(body)

    def post_node_status(self, node: Hollow, conn: Conn) -> None:
        code, body = self.latencies.call(
            conn, "PATCH nodes/status", "PATCH", f"/api/v1/nodes/{node.name}/status",
            {"status": {"conditions": node_conditions(now())}},
            "application/strategic-merge-patch+json")
        self._check(code, body, 200)

    def start_pod(self, node: Hollow, pod: dict, n: int, conn: Conn) -> None:
        meta = pod["metadata"]
        code, body = self.latencies.call(
            conn, "PATCH pods/status", "PATCH",
            f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
            running_status(pod, node, n), "application/strategic-merge-patch+json")
        self._check(code, body, 200)

    def _wait_schedulable(self) -> None:
        """Until no node carries the not-ready taint kube-apiserver gives a new Node (its node
        lifecycle controller lifts it): pods are measured from a ready cluster."""
        conn = Conn(self.target)
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                code, body = conn.request("GET", "/api/v1/nodes?labelSelector=hollow%3Dtrue")
                self._check(code, body, 200)
                left = Counter(f"{t.get('key')}:{t.get('effect')}"
                               for n in json.loads(body)["items"]
                               for t in (n.get("spec") or {}).get("taints") or [])
                if not left:
                    return
                time.sleep(1)
            raise SystemExit(f"the hollow nodes kept their taints for 300 s: {dict(left)}")
        finally:
            conn.close()

    # reads: a watch per node, and the measuring watcher

    def _node_watch(self, node: Hollow, ready: threading.Barrier) -> None:
        """List, then watch from there; on an error list and watch again after a back-off,
        as a kubelet's reflector does."""
        seen: set[str] = set()
        selector = f"fieldSelector=spec.nodeName%3D{node.name}"
        delay, synced = 0.5, False
        while not self.stop.is_set():
            conn = watch_conn(self.target)
            try:
                code, body = self.latencies.call(conn, "LIST pods", "GET",
                                                 f"/api/v1/pods?{selector}")
                self._check(code, body, 200)
                rv = json.loads(body)["metadata"]["resourceVersion"]
                for pod in json.loads(body)["items"]:
                    self._on_pod(node, pod, seen)
                if not synced:     # the first list only: the run starts once all have one
                    synced = True
                    ready.wait()
                while not self.stop.is_set():
                    resp = conn.stream(f"/api/v1/pods?{selector}&watch=1&resourceVersion={rv}"
                                       "&allowWatchBookmarks=true"
                                       f"&timeoutSeconds={WATCH_SECONDS:.0f}")
                    self._check(resp.status, b"", 200)
                    for line in resp:
                        event = json.loads(line)
                        rv = event["object"]["metadata"].get("resourceVersion", rv)
                        if event["type"] in ("ADDED", "MODIFIED"):
                            self._on_pod(node, event["object"], seen)
                    resp.close()
            except (OSError, ValueError, AssertionError) as e:
                if self.stop.is_set():
                    return
                self.errors.append(f"watch {node.name}: {type(e).__name__}: {e}"[:300])
                self.stop.wait(delay)
                delay = min(delay * 2, 10.0)
            finally:
                conn.close()

    def _on_pod(self, node: Hollow, pod: dict, seen: set[str]) -> None:
        uid = pod["metadata"]["uid"]
        if uid in seen or (pod.get("status") or {}).get("phase") == "Running":
            return
        seen.add(uid)
        self.writes.put(lambda c, n=len(seen): self.start_pod(node, pod, n, c))

    def _measure(self, rv: str) -> None:
        """Watches the namespace's pods for the moments they are bound and Running. A watch
        the server ends is resumed from its last revision: kube-apiserver closes a watcher
        that falls behind (this one, decoding every pod event under load, did after ~4,000
        pods at 1,000 nodes and the run then saw no more pods start); a 410 relists, and the
        pods found bound or Running then count from the list's answer (an upper bound)."""
        path = f"/api/v1/namespaces/{self.namespace}/pods"
        while not self.stop.is_set():
            conn = watch_conn(self.target)
            try:
                if not rv:
                    code, body = conn.request("GET", path)
                    self._check(code, body, 200)
                    listed = json.loads(body)
                    for obj in listed["items"]:
                        self._seen(obj)
                    rv = listed["metadata"]["resourceVersion"]
                self.measure_watches += 1
                resp = conn.stream(f"{path}?watch=1&resourceVersion={rv}"
                                   f"&allowWatchBookmarks=true&timeoutSeconds={WATCH_SECONDS:.0f}")
                self._check(resp.status, b"", 200)
                for line in resp:
                    event = json.loads(line)
                    obj = event["object"]
                    if event["type"] == "ERROR":
                        self.errors.append(f"measuring watch: {obj.get('message')}"[:300])
                        rv = ""
                        break
                    rv = obj["metadata"].get("resourceVersion", rv)
                    self._seen(obj)
                resp.close()
            except (OSError, ValueError, AssertionError) as e:
                if not self.stop.is_set():
                    self.errors.append(f"measuring watch: {type(e).__name__}: {e}"[:300])
                    self.stop.wait(1.0)
            finally:
                conn.close()

    def _seen(self, obj: dict) -> None:
        name = obj["metadata"].get("name", "")
        if (obj.get("spec") or {}).get("nodeName"):
            self.scheduled.setdefault(name, time.time())
        if (obj.get("status") or {}).get("phase") == "Running":
            self.running.setdefault(name, time.time())

    def _heartbeats(self) -> None:
        """Each node's lease every 10 s and status every 60 s, spread over the period."""
        start, count = time.monotonic(), len(self.nodes)
        due = [(start + LEASE_SECONDS * i / count, 0, i) for i in range(count)]
        due += [(start + NODE_STATUS_SECONDS * i / count, 1, i) for i in range(count)]
        heapq.heapify(due)
        while not self.stop.is_set():
            when, kind, i = heapq.heappop(due)
            if self.stop.wait(max(0.0, when - time.monotonic())):
                return
            node = self.nodes[i]
            if kind == 0:
                self.writes.put(lambda c, n=node: self.renew_lease(n, c))
                heapq.heappush(due, (when + LEASE_SECONDS, 0, i))
            else:
                self.writes.put(lambda c, n=node: self.post_node_status(n, c))
                heapq.heappush(due, (when + NODE_STATUS_SECONDS, 1, i))

    # the run

    def run(self, pods: int, qps: float, settle: float, creators: int) -> dict[str, float]:
        for _ in range(WRITERS):
            self._thread(self._writer)
        for node in self.nodes:
            self.writes.put(lambda c, n=node: self.register(n, c))
        self.writes.join()
        if self.errors:
            raise SystemExit(f"registration failed: {self.errors[:3]}")
        # Heartbeats from registration on, as a kubelet's: a node that kept silent while the
        # others registered and their taints were lifted would pass kube-controller-manager's
        # node-monitor-grace-period and be tainted unreachable for good.
        self._thread(self._heartbeats)
        self._wait_schedulable()
        ready = threading.Barrier(len(self.nodes) + 1)
        for node in self.nodes:
            self._thread(self._node_watch, node, ready)
        ready.wait(timeout=600)
        try:   # SIGINT: no more creates, the figures of the pods created so far
            conn = Conn(self.target)
            try:
                code, body = conn.request("GET", f"/api/v1/namespaces/{self.namespace}/pods")
                self._check(code, body, 200)
                self._thread(self._measure, json.loads(body)["metadata"]["resourceVersion"])
            finally:
                conn.close()
            start = time.perf_counter()
            threads = [threading.Thread(target=self._create, args=(k, creators, pods, qps,
                                                                   start), daemon=True)
                       for k in range(creators)]
            for t in threads:
                t.start()
            for t in threads:
                while t.is_alive():   # a join that SIGINT can interrupt
                    t.join(0.5)
            deadline = time.monotonic() + settle
            while len(self.running) < pods and time.monotonic() < deadline:
                time.sleep(0.5)
        except KeyboardInterrupt:
            self.stop.set()   # the creators too
            self.errors.append("interrupted: figures of the pods created so far")
        return self.figures(len(self.created))

    def _create(self, k: int, creators: int, pods: int, qps: float, start: float) -> None:
        """Creator k of `creators`: pods k, k + creators, ... each at its time in the --qps
        schedule, on its own connection. One creator waits for each answer, so it cannot go
        faster than one POST's latency allows (~7/s at 1,000 nodes); a stop ends it."""
        conn = Conn(self.target)
        try:
            for i in range(k, pods, creators):
                if self.stop.wait(max(0.0, start + i / qps - time.perf_counter())):
                    return
                name = f"p{i:05}"
                self.created[name] = time.time()
                try:
                    code, body = self.latencies.call(
                        conn, "POST pods", "POST",
                        f"/api/v1/namespaces/{self.namespace}/pods", pod_object(name))
                    self._check(code, body, 201)
                except (OSError, AssertionError) as e:   # counted; the run goes on
                    self.errors.append(f"create {name}: {type(e).__name__}: {e}"[:300])
                    conn.close()
                    conn = Conn(self.target)
        finally:
            conn.close()

    def figures(self, pods: int) -> dict[str, float]:
        created = list(self.created.items())   # a creator may still be adding one
        startup = [self.running[n] - t for n, t in created if n in self.running]
        scheduling = [self.scheduled[n] - t for n, t in created
                      if n in self.scheduled]
        out = {"pods_running": len(startup), "pods_created": pods,
               "pod_startup_p50_s": p(startup, 0.5) if startup else -1,
               "pod_startup_p99_s": p(startup, 0.99) if startup else -1,
               "pod_scheduled_p99_s": p(scheduling, 0.99) if scheduling else -1,
               "errors": len(self.errors), "measuring_watches": self.measure_watches}
        for key, samples in sorted(self.latencies.samples.items()):
            out[f"{key} p99 ms"] = p(samples, 0.99) * 1e3
            out[f"{key} count"] = len(samples)
        return out

    def close(self) -> None:
        self.stop.set()
        for _ in range(WRITERS):
            self.writes.put(None)


def error_kind(error: str) -> str:
    """The kind of a driver error: "watch TimeoutError" of "watch hollow-0001: TimeoutError:
    ...", "OSError" of "OSError: ..."."""
    parts = error.split(": ")
    if parts[0].split()[0] in ("watch", "create") and len(parts) > 1:
        return f"{parts[0].split()[0]} {parts[1]}"
    return parts[0]


def drive(target: Target, nodes: int, pods_per_node: int, qps: float, settle: float,
          pids: list[int], creators: int = CREATORS) -> dict[str, float]:
    """One run on a server: the hollow nodes, the pods, the figures and peak RSS of `pids`."""
    namespace = "hollow-" + uuid.uuid4().hex[:6]
    setup(target, namespace)
    conn = Conn(target)
    try:
        conn.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                    "metadata": {"name": "kube-node-lease"}})
    finally:
        conn.close()
    prefix = "hollow-" + uuid.uuid4().hex[:4]
    driver = Driver(target, [hollow(i, prefix) for i in range(nodes)], namespace)
    peak = [0.0]

    def sample() -> None:
        while not driver.stop.wait(1.0):
            peak[0] = max(peak[0], rss_mib(pids))

    if pids:
        threading.Thread(target=sample, daemon=True).start()
    try:
        out = driver.run(nodes * pods_per_node, qps, settle, creators)
    finally:
        driver.close()
    if driver.errors:
        kinds = Counter(error_kind(e) for e in driver.errors)
        print("errors by kind:", dict(kinds.most_common(8)), "first 3:", driver.errors[:3],
              file=sys.stderr)
    if pids:
        out["control_plane_peak_rss_mib"] = max(peak[0], rss_mib(pids))
    out["load_1m"] = os.getloadavg()[0]
    return out


# the three servers, each on a fresh database


def kubeconfig(path: str, target: Target) -> str:
    with open(path, "w") as f:
        json.dump({"apiVersion": "v1", "kind": "Config", "current-context": "c",
                   "clusters": [{"name": "c", "cluster": {"server": target.url,
                                                         "certificate-authority": target.ca}}],
                   "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                   "users": [{"name": "u", "user": {"token": target.token}}]}, f)
    return path


def start_kube_with_scheduler(root: str, token: str) -> Running:
    """kube-apiserver on etcd, kube-scheduler, and kube-controller-manager with only the node
    lifecycle controller: the apiserver taints a new Node not-ready and that controller lifts
    the taint once the node reports Ready, as in any cluster."""
    binaries = [refbin(name) for name in ("kube-apiserver", "kube-scheduler",
                                          "kube-controller-manager")]
    running = start_kube(root, token)
    config = kubeconfig(os.path.join(root, "component.kubeconfig"), running.target)
    common = ["--kubeconfig", config, "--authentication-kubeconfig", config,
              "--authorization-kubeconfig", config, "--leader-elect=false",
              "--bind-address", "127.0.0.1", "--v", "0"]
    components = []
    with open(os.path.join(root, "components.log"), "wb") as out:
        for binary, extra in ((binaries[1], []),
                              (binaries[2], ["--controllers", "node-lifecycle-controller"])):
            components.append(subprocess.Popen(
                [binary, *common, "--secure-port", str(free_port()), *extra],
                stdout=out, stderr=subprocess.STDOUT))
    # stopped first: they are clients of the others
    return Running(components + running.procs, running.target, running.storage)


def start_pyapiserver_etcd(root: str, token: str, flags: list[str]) -> Running:
    etcd, urls = start_etcd(os.path.join(root, "etcd"), members=1)
    try:
        running = start_pyapiserver(root, token, ["--etcd-servers", urls, *flags])
    except BaseException:
        Running(etcd, None, "").stop()
        raise
    return Running(running.procs + etcd, running.target, os.path.join(root, "etcd"))


SERVERS = ("py-sqlite", "py-etcd", "kube-etcd")


def start_server(name: str, root: str, token: str, workers: int) -> Running:
    flags = ["--workers", str(workers)] if workers > 1 else []
    if name == "py-sqlite":
        return start_pyapiserver(root, token, flags)
    if name == "py-etcd":
        return start_pyapiserver_etcd(root, token, flags)
    return start_kube_with_scheduler(root, token)


def compare(args: argparse.Namespace) -> None:
    token = "hollow-" + uuid.uuid4().hex
    results: dict[str, dict[str, float]] = {}
    for name in args.servers.split(","):
        root = tempfile.mkdtemp(prefix=f"hollow-{name}-")
        try:
            with open(os.path.join(root, "tokens.csv"), "w") as f:
                f.write(f'{token},hollow,uid-hollow,"system:masters"\n')
            running = start_server(name, root, token, args.workers)
            try:
                results[name] = drive(running.target, args.nodes, args.pods_per_node, args.qps,
                                      args.settle, [proc.pid for proc in running.procs],
                                      args.creators)
            finally:
                running.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)
        print(name, json.dumps({k: round(v, 3) for k, v in results[name].items()}), flush=True)
    report(results, args)


def report(results: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    names = list(results)
    base = "kube-etcd" if "kube-etcd" in results else names[-1]
    print(f"\n{args.nodes} hollow nodes x {args.pods_per_node} pods, created at {args.qps}/s, "
          f"pyapiserver --workers {args.workers}; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; ratios to {base}")
    print(f"{'':32}" + "".join(f"{n:>12}" for n in names) +
          "".join(f"{n + '/' + base[:4]:>16}" for n in names if n != base))
    keys = [k for k in results[names[0]] if not k.endswith(" count")]
    for key in keys:
        row = [results[n].get(key, float("nan")) for n in names]
        ratios = [results[n].get(key, float("nan")) / results[base][key]
                  for n in names if n != base and results[base].get(key)]
        print(f"{key:32}" + "".join(f"{v:12.2f}" for v in row) +
              "".join(f"{r:16.2f}" for r in ratios))
    for n in names:
        mutating = max((v for k, v in results[n].items()
                        if k.endswith(" p99 ms") and k.split()[0] in ("POST", "PUT", "PATCH")),
                       default=0.0) / 1e3
        print(f"SLO {n}: mutating p99 {mutating:.2f} s (<= {SLO_MUTATING_P99}), pod startup p99 "
              f"{results[n]['pod_startup_p99_s']:.2f} s (<= {SLO_POD_STARTUP_P99})")


def main() -> None:
    # a terminated run still stops the servers it started (the finally blocks)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # a long run (1,000 nodes x 30) stopped with SIGINT reports what it has; installed even
    # when started in the background, where SIGINT comes ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100, help="hollow nodes (default 100)")
    parser.add_argument("--pods-per-node", type=int, default=30, help="default 30")
    parser.add_argument("--qps", type=float, default=20.0, help="pod creates per second")
    parser.add_argument("--creators", type=int, default=CREATORS,
                        help=f"threads creating pods, each on its own connection (default "
                             f"{CREATORS})")
    parser.add_argument("--settle", type=float, default=300.0,
                        help="seconds to wait after the last create for pods to be Running")
    parser.add_argument("--servers", default="py-sqlite,py-etcd,kube-etcd",
                        help="which of " + ",".join(SERVERS) + " to start, in this order")
    parser.add_argument("--workers", type=int, default=1,
                        help="pyapiserver --workers (default: %(default)s)")
    parser.add_argument("--url", help="instead: an already running server's https://host:port")
    parser.add_argument("--ca", help="CA bundle that verifies --url")
    parser.add_argument("--token", help="a bearer token of a system:masters user on --url")
    args = parser.parse_args()
    unknown = set(args.servers.split(",")) - set(SERVERS)
    if unknown:
        parser.error(f"--servers: unknown {', '.join(sorted(unknown))}")
    if args.workers < 1:
        parser.error(f"--workers: must be at least 1, not {args.workers}")
    if args.creators < 1:
        parser.error(f"--creators: must be at least 1, not {args.creators}")
    if args.url:
        if not (args.ca and args.token):
            parser.error("--url: needs --ca and --token")
        figures = drive(Target(args.url, args.ca, args.token), args.nodes, args.pods_per_node,
                        args.qps, args.settle, [], args.creators)
        print(json.dumps(figures, indent=1))
    else:
        compare(args)


if __name__ == "__main__":
    main()
