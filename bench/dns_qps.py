"""Benchmark of pykube-dns: queries/s answered and latency (p50, p99) for cluster names (Service
A records) and for cached forwarded names, beside Debian's dnsmasq on the same machine serving
the same names as static records (--host-record, --addn-hosts) and forwarding with its cache;
and 50,000 distinct pod names, each asked once a pass, which pykube-dns cannot answer from the
responses it rendered in the last second.

Setup: a real pyapiserver (temp dir) with --services Services; pykube-dns on 127.0.0.1; an
upstream dnsmasq that answers the external names (--address, TTL 300); the reference dnsmasq with
one --host-record per Service and --server pointing at that upstream. Both servers are measured
by the same closed-loop client (one thread, --concurrency queries in flight over UDP, each query
sent when the previous one on its socket was answered), alternately, --rounds times; the medians
are printed. The client is Python too: what it reaches against dnsmasq is its own ceiling.
Run as root: .venv/bin/python bench/dns_qps.py [--services 100] [--seconds 5]
(installs dnsmasq-base with apt if it is missing)."""
from __future__ import annotations

import argparse
import os
import selectors
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid

import dns.exception
import dns.message
import dns.query

BIN = os.path.dirname(sys.executable)
ZONE = "cluster.local"
EXTERNAL = [f"host{i}.external.example" for i in range(20)]
PODS = 50000   # more than either server answers in a round: each name once


def ensure_dnsmasq() -> str:
    path = shutil.which("dnsmasq") or shutil.which("dnsmasq", path="/usr/sbin")
    if path:
        return path
    subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "-qq",
                    "--no-install-recommends", "dnsmasq-base"], check=True,
                   env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    return shutil.which("dnsmasq", path="/usr/sbin:/usr/bin")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dnsmasq(binary: str, port: int, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen([binary, "--keep-in-foreground", "--conf-file=/dev/null",
                             "--no-resolv", "--no-hosts", "--bind-interfaces",
                             "--listen-address=127.0.0.1", f"--port={port}", "--pid-file=",
                             "--user=root", *args], stderr=subprocess.PIPE, text=True)
    wait_answer(port, "probe.invalid")
    return proc


def wait_answer(port: int, name: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=0.5)
            return
        except (dns.exception.Timeout, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"nothing answers on port {port}")


def start_apiserver(data_dir: str) -> tuple[subprocess.Popen, str]:
    tokens = os.path.join(data_dir, "tokens.csv")
    with open(tokens, "w") as f:
        f.write(f'bench-{uuid.uuid4().hex},bench,bench,"system:masters"\n')
    proc = subprocess.Popen([os.path.join(BIN, "pyapiserver"), "--bind-address", "127.0.0.1",
                             "--port", "0", "--data-dir", data_dir, "--token-auth-file", tokens,
                             "--service-cluster-ip-range", "198.19.240.0/20"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = proc.stdout.readline()
    if "serving" not in line:
        raise RuntimeError(f"pyapiserver did not start: {line}")
    return proc, os.path.join(data_dir, "admin.kubeconfig")


def create_services(kubeconfig: str, count: int) -> dict[str, str]:
    """name -> ClusterIP of `count` Services in namespace bench."""
    from kubeapi import kubeconfig as kc
    from kubeapi.restclient import ApiClient
    client = ApiClient(kc.load(kubeconfig), "dns-bench")
    try:
        client.create("/api/v1/namespaces", {"metadata": {"name": "bench"}})
        out = {}
        for i in range(count):
            svc = client.create("/api/v1/namespaces/bench/services", {
                "metadata": {"name": f"web{i}"},
                "spec": {"ports": [{"name": "http", "port": 80}]}})
            out[f"web{i}.bench.svc.{ZONE}"] = svc["spec"]["clusterIP"]
        return out
    finally:
        client.close()


def load(port: int, names: list[str], seconds: float, concurrency: int) -> tuple[float, list]:
    """Queries/s and the latencies (s) of a closed loop of `concurrency` UDP sockets."""
    wires = [bytearray(dns.message.make_query(n, "A").to_wire()) for n in names]
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(concurrency):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect(("127.0.0.1", port))
        s.setblocking(False)
        socks.append(s)
        sel.register(s, selectors.EVENT_READ)
    sent: dict[socket.socket, tuple[int, float]] = {}
    latencies: list[float] = []
    counter = 0

    def send(s: socket.socket) -> None:
        nonlocal counter
        counter += 1
        wire = wires[counter % len(wires)]
        ident = counter & 0xFFFF
        struct.pack_into("!H", wire, 0, ident)
        sent[s] = (ident, time.perf_counter())
        s.send(wire)

    end = time.perf_counter() + seconds
    for s in socks:
        send(s)
    answered = 0
    try:
        while time.perf_counter() < end:
            events = sel.select(timeout=1.0)
            if not events:   # a lost datagram: ask again on every socket
                for s in socks:
                    send(s)
                continue
            for key, _ in events:
                s = key.fileobj
                data = s.recv(4096)
                ident, t0 = sent[s]
                if struct.unpack_from("!H", data)[0] != ident:
                    continue
                latencies.append(time.perf_counter() - t0)
                answered += 1
                send(s)
    finally:
        for s in socks:
            sel.unregister(s)
            s.close()
        sel.close()
    return answered / seconds, latencies


def pod_names(count: int) -> dict[str, str]:
    """`count` distinct pod records (a-b-c-d.bench.pod.cluster.local): a name asked once per
    pass over the list, so pykube-dns parses and renders every answer."""
    out = {}
    for i in range(count):
        ip = f"198.18.{i // 250}.{i % 250 + 1}"
        out[f"{ip.replace('.', '-')}.bench.pod.{ZONE}"] = ip
    return out


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--services", type=int, default=100)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    binary = ensure_dnsmasq()
    data_dir = tempfile.mkdtemp(prefix="pyapiserver-bench-")
    procs: list[subprocess.Popen] = []
    try:
        api, kubeconfig = start_apiserver(data_dir)
        procs.append(api)
        services = create_services(kubeconfig, args.services)
        upstream_port = free_port()
        procs.append(dnsmasq(binary, upstream_port, "--local-ttl=300",
                             "--address=/external.example/198.18.200.1"))
        pods = pod_names(PODS)
        hosts = os.path.join(data_dir, "pods.hosts")
        with open(hosts, "w") as f:
            f.writelines(f"{ip} {name}\n" for name, ip in pods.items())
        ref_port = free_port()
        procs.append(dnsmasq(binary, ref_port, "--cache-size=10000", "--local-ttl=5",
                             f"--addn-hosts={hosts}",
                             f"--server=127.0.0.1#{upstream_port}",
                             *[f"--host-record={n},{ip}" for n, ip in services.items()]))
        ours = subprocess.Popen([os.path.join(BIN, "pykube-dns"), "--kubeconfig", kubeconfig,
                                 "--listen", "127.0.0.1:0",
                                 "--upstream", f"127.0.0.1:{upstream_port}"],
                                stdout=subprocess.PIPE, text=True)
        procs.append(ours)
        line = ours.stdout.readline()
        our_port = int(line.split(" on ")[1].split()[0].rsplit(":", 1)[1])
        cluster = list(services)
        wait_answer(our_port, cluster[-1])
        for name in EXTERNAL:   # warm both caches
            wait_answer(our_port, name)
            wait_answer(ref_port, name)
        results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
        for _ in range(args.rounds):
            for kind, names in (("cluster names", cluster), ("cached forwarded", EXTERNAL),
                                ("pod names, each new", list(pods))):
                for who, port in (("pykube-dns", our_port), ("dnsmasq", ref_port)):
                    qps, lat = load(port, names, args.seconds, args.concurrency)
                    results.setdefault((kind, who), []).append(
                        (qps, pct(lat, 0.5), pct(lat, 0.99)))
        print(f"{args.services} Services, {args.concurrency} queries in flight, "
              f"{args.rounds} rounds of {args.seconds:g} s, load average "
              f"{os.getloadavg()[0]:.2f}")
        print(f"{'':18} {'server':11} {'queries/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
        for (kind, who), rows in results.items():
            qps = statistics.median(r[0] for r in rows)
            print(f"{kind:18} {who:11} {qps:10.0f} {statistics.median(r[1] for r in rows):8.2f} "
                  f"{statistics.median(r[2] for r in rows):8.2f}")
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
