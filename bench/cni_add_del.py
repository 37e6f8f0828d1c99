"""Pod network setup cost: ADD+DEL of a bridge + host-local + portmap chain, the reference
plugins against ours by exec (how containerd and podman call them) and in-process (how our
kubelet runs them), the three sides alternating round by round in one run so that drift in
the machine's load hits them all. Plugin start-up alone is bench/cni_plugin_start.py.

    sudo .venv/bin/python bench/cni_add_del.py [--rounds 30]

Prints medians, p90 and the ratio of medians to the reference, and the machine's load.
Everything it creates (netns, bridge, rules, allocations) is removed at the end, and host-wide
changes (ip_forward, the reference's iptables nat chains) are put back; addresses are in
198.18.0.0/15.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.stats import load, median, ms, p90  # noqa: E402
from cni import conf as cni_conf  # noqa: E402
from cni import invoker  # noqa: E402
from netns import links, named, rtnl, sysctl  # noqa: E402

VENV_BIN = os.path.dirname(sys.executable)
CNI_PATH = [VENV_BIN, "/usr/lib/cni"]
WARM_UP = 3  # rounds not counted: bridge creation, page cache, the in-process imports


def chain(name: str, bridge: str, data_dir: str, ours: bool) -> cni_conf.NetworkConfigList:
    p = "pycni-" if ours else ""
    raw = {"cniVersion": "1.0.0", "name": name, "plugins": [
        {"type": f"{p}bridge", "bridge": bridge, "isGateway": True, "ipMasq": True,
         "ipam": {"type": f"{p}host-local", "ranges": [[{"subnet": "198.19.250.0/24"}]],
                  "dataDir": data_dir}},
        {"type": f"{p}portmap", "capabilities": {"portMappings": True}}]}
    return cni_conf.parse(json.dumps(raw).encode())


class Side:
    """One way of running the chain, and its timings."""

    def __init__(self, label: str, cni: invoker.CNI, net, pod: str) -> None:
        self.label = label
        self.cni = cni
        self.net = net
        self.rt = invoker.RuntimeConf("bench", pod, "eth0", capability_args={
            "portMappings": [{"hostPort": 18999, "containerPort": 80, "protocol": "tcp"}]})
        self.adds: list[float] = []
        self.dels: list[float] = []

    def round(self, keep: bool) -> None:
        t0 = time.perf_counter()
        self.cni.add(self.net, self.rt)
        t1 = time.perf_counter()
        self.cni.delete(self.net, self.rt)
        t2 = time.perf_counter()
        if keep:
            self.adds.append(t1 - t0)
            self.dels.append(t2 - t1)

    def totals(self) -> list[float]:
        return [a + d for a, d in zip(self.adds, self.dels)]


def nft_tables() -> set[str]:
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    return {line.split(None, 1)[1].strip() for line in out.splitlines() if line.strip()}


def restore_host(forward: str, tables: set[str]) -> None:
    """Puts back IPv4 forwarding (a gateway bridge turns it on) and drops the iptables nat
    tables the reference portmap created if they hold only its per-host chains."""
    sysctl.write("net.ipv4.ip_forward", forward)
    for family, save in (("ip", "iptables-save"), ("ip6", "ip6tables-save")):
        if f"{family} nat" in tables or f"{family} nat" not in nft_tables():
            continue
        text = subprocess.run([save, "-t", "nat"], capture_output=True, text=True).stdout
        if all("CNI-HOSTPORT" in line and "CNI-DN-" not in line
               for line in text.splitlines() if line.startswith("-A ")):
            subprocess.run(["nft", "delete", "table", family, "nat"], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    rounds = parser.parse_args().rounds
    work = tempfile.mkdtemp(prefix="pycni-bench-")
    netns_dir = os.path.join(work, "netns")
    bridge = "pybench" + secrets.token_hex(3)
    forward, tables = sysctl.read("net.ipv4.ip_forward"), nft_tables()
    pod = named.create("pod", netns_dir)
    load_before = load()
    sides = []
    try:
        for label, ours, in_process in (("reference (exec)", False, False),
                                        ("ours (exec)", True, False),
                                        ("ours (in-process)", True, True)):
            net = chain(f"bench{secrets.token_hex(3)}", bridge, os.path.join(work, "ipam"), ours)
            cni = invoker.CNI(CNI_PATH, os.path.join(work, "cache"), in_process=in_process)
            sides.append(Side(label, cni, net, pod))
        for i in range(WARM_UP + rounds):
            # Each round starts with another side, so that none always follows the same one.
            for side in sides[i % 3:] + sides[:i % 3]:
                side.round(keep=i >= WARM_UP)
    finally:
        named.delete("pod", netns_dir)
        named.release_dir(netns_dir)
        with rtnl.RtnlSocket() as host:
            link = links.get_link(host, bridge)
            if link is not None:
                links.delete_link(host, link.index)
        subprocess.run(["rm", "-rf", work])
        restore_host(forward, tables)

    ref = median(sides[0].totals())
    print(f"CNI ADD+DEL of bridge + host-local + portmap, {rounds} rounds, sides alternating")
    print(f"before: {load_before}\nafter:  {load()}")
    print(f"{'ms':20} {'ADD':>7} {'p90':>7} {'DEL':>7} {'p90':>7} {'ADD+DEL':>7} {'p90':>7}"
          "  ratio (medians)")
    for side in sides:
        total = side.totals()
        print(f"{side.label:20} {ms(median(side.adds))} {ms(p90(side.adds))} "
              f"{ms(median(side.dels))} {ms(p90(side.dels))} {ms(median(total))} "
              f"{ms(p90(total))}  {median(total) / ref:5.2f}")


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("cni_add_del.py: run as root (it creates a netns, a bridge and NAT rules)")
    main()
