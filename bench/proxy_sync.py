"""Benchmark of pykube-proxy's rules (issue 23).

1. Sync time: the syncer programs 1, 100 and 1,000 Services of 10 endpoints each into a real
   nftables table, full (the table replaced, as after a start) and incremental (one endpoint of
   one Service replaced, as when a pod is rescheduled); median and p90 of --runs, and the number
   of libnftables transactions (the `nft -f` equivalent) each change took.
2. Data path: HTTP requests/s from a client pod to one busybox httpd pod, through its Service's
   ClusterIP (DNAT by the proxy's rules) against its pod IP directly, each request on a new
   connection (NAT works per connection), alternately for --rounds rounds of --seconds each.

Everything runs in a network namespace of the bench's own (unshared at start): the host's
ruleset and links are never touched. Run as root: .venv/bin/python bench/proxy_sync.py"""
from __future__ import annotations

import argparse
import ctypes
import http.client
import ipaddress
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests"), os.path.join(ROOT, "tests", "proxy")]

from stats import load, median, ms, p90  # noqa: E402

TABLE = "pykube-proxy-bench"
CLONE_NEWNET = 0x40000000
CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18


def _objects(count: int, endpoints: int, shift: int = 0):
    """`count` Services (ClusterIPs in 198.19.0.0/16) with `endpoints` endpoints each (pod IPs
    in 198.18.0.0/16), as the model's ServicePorts."""
    from proxy.model import service_ports

    services = {}
    for i in range(count):
        ip = str(ipaddress.ip_address("198.19.0.0") + i + 1)
        svc = {"metadata": {"name": f"svc-{i}", "namespace": "bench"},
               "spec": {"type": "ClusterIP", "clusterIP": ip,
                        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}
        base = ipaddress.ip_address("198.18.0.0") + i * endpoints + shift
        slice_ = {"metadata": {"name": f"svc-{i}-x", "namespace": "bench",
                               "labels": {"kubernetes.io/service-name": f"svc-{i}"}},
                  "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
                  "endpoints": [{"addresses": [str(base + k)]} for k in range(endpoints)]}
        services[f"bench/svc-{i}"] = service_ports(svc, [slice_])
    return services


def bench_sync(runs: int) -> list[tuple]:
    from netns.nftables import Nft
    from proxy.rules import ProxyOptions
    from proxy.syncer import Syncer

    nft = Nft()
    rows = []
    try:
        for count in (1, 100, 1000):
            services = _objects(count, 10)
            syncer = Syncer(ProxyOptions(table=TABLE, cluster_cidrs=("198.18.0.0/16",)),
                            nft.run, clear_conntrack=lambda flows: 0)
            full = []
            for _ in range(max(3, runs // 10 if count == 1000 else runs)):
                started = time.perf_counter()
                syncer.full_sync(services)
                full.append(time.perf_counter() - started)
            key = f"bench/svc-{count // 2}"
            moved = _objects(count, 10, shift=count * 10 + 7)[key]  # other pods: new IPs
            one, transactions = [], []
            for i in range(runs):
                ports = moved if i % 2 == 0 else services[key]
                before = syncer.stats.transactions
                started = time.perf_counter()
                syncer.sync({key: ports})
                one.append(time.perf_counter() - started)
                transactions.append(syncer.stats.transactions - before)
            rows.append((count, full, one, max(transactions)))
    finally:
        nft.run(f"add table ip {TABLE}\ndelete table ip {TABLE}")
        nft.close()
    return rows


def _requests_per_second(netns: str, ip: str, port: int, seconds: float) -> float:
    from netns import enter

    def loop() -> float:
        done, deadline = 0, time.monotonic() + seconds
        started = time.monotonic()
        while time.monotonic() < deadline:
            conn = http.client.HTTPConnection(ip, port, timeout=5)
            conn.request("GET", "/")
            conn.getresponse().read()
            conn.close()
            done += 1
        return done / (time.monotonic() - started)
    return enter.run_in_netns(netns, loop)


def bench_datapath(rounds: int, seconds: float) -> tuple[list[float], list[float]]:
    from netns.nftables import Nft
    from proxy.model import service_ports
    from proxy.rules import ProxyOptions
    from proxy.syncer import Syncer
    from proxy_testlib import HTTP_PORT, PodNet, endpoint_slice, service

    net = PodNet("pybench0")
    nft = Nft()
    try:
        pod = net.add_pod("web")
        client = net.add_pod("client", serve=False)
        svc = service("web", net.service_ip())
        syncer = Syncer(ProxyOptions(table=TABLE, cluster_cidrs=(net.subnet,)), nft.run)
        syncer.full_sync({"default/web": service_ports(svc, [endpoint_slice("web", [pod])])})
        cluster_ip = svc["spec"]["clusterIP"]
        _requests_per_second(client.netns, cluster_ip, 80, 0.5)  # warm up both paths
        _requests_per_second(client.netns, pod.ip, HTTP_PORT, 0.5)
        via_service, direct = [], []
        for _ in range(rounds):
            via_service.append(_requests_per_second(client.netns, cluster_ip, 80, seconds))
            direct.append(_requests_per_second(client.netns, pod.ip, HTTP_PORT, seconds))
        return via_service, direct
    finally:
        nft.run(f"add table ip {TABLE}\ndelete table ip {TABLE}")
        nft.close()
        net.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="syncs timed per figure")
    parser.add_argument("--rounds", type=int, default=5, help="data path rounds")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per round")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("proxy_sync: run as root", file=sys.stderr)
        return 1
    # Before any thread starts: the threads made later are born in the new namespaces. A
    # mount namespace too, for a /sys of the new network namespace (bridge ports' settings)
    # and so that the pods' namespace mounts end with this process.
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET | CLONE_NEWNS) != 0 or \
            libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0 or \
            libc.mount(b"sysfs", b"/sys", b"sysfs", 0, None) != 0:
        print(f"proxy_sync: namespaces: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
        return 1
    from netns import links, rtnl, sysctl

    with rtnl.RtnlSocket() as sock:
        links.set_up(sock, links.get_link(sock, "lo").index)
    sysctl.write("net.ipv4.ip_forward", "1")
    sysctl.write("net.bridge.bridge-nf-call-iptables", "1")

    print(f"pykube-proxy sync ({load()})")
    print("| Services (10 endpoints each) | full sync median | p90 | one Service changed "
          "median | p90 | nft transactions per change |")
    print("|---|---|---|---|---|---|")
    for count, full, one, transactions in bench_sync(args.runs):
        print(f"| {count} | {ms(median(full))} ms | {ms(p90(full))} ms | {ms(median(one))} ms "
              f"| {ms(p90(one))} ms | {transactions} |")

    via_service, direct = bench_datapath(args.rounds, args.seconds)
    print(f"\nHTTP requests/s, a new connection each ({load()})")
    print("| path | median | ratio |")
    print("|---|---|---|")
    print(f"| pod IP directly | {median(direct):.0f} | 1.00 |")
    print(f"| ClusterIP (DNAT) | {median(via_service):.0f} | "
          f"{median(via_service) / median(direct):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
