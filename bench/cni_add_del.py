"""Pod network setup cost: ADD+DEL of a bridge + host-local + portmap chain, the reference
plugins against ours (by exec, and in-process as the kubelet runs them), in one run on the same
machine; plus what a plugin process pays before doing anything (interpreter + imports).

    sudo .venv/bin/python bench/cni_add_del.py [--rounds 30]

Prints medians and ratios to the reference. Everything it creates (netns, bridge, rules,
allocations) is removed at the end, and host-wide changes (ip_forward, the reference's iptables
nat chains) are put back; addresses are in 198.18.0.0/15.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cni import conf as cni_conf  # noqa: E402
from cni import invoker  # noqa: E402
from netns import links, named, rtnl, sysctl  # noqa: E402

VENV_BIN = os.path.dirname(sys.executable)
CNI_PATH = [VENV_BIN, "/usr/lib/cni"]


def chain(name: str, bridge: str, data_dir: str, ours: bool) -> cni_conf.NetworkConfigList:
    p = "pycni-" if ours else ""
    raw = {"cniVersion": "1.0.0", "name": name, "plugins": [
        {"type": f"{p}bridge", "bridge": bridge, "isGateway": True, "ipMasq": True,
         "ipam": {"type": f"{p}host-local", "ranges": [[{"subnet": "198.19.250.0/24"}]],
                  "dataDir": data_dir}},
        {"type": f"{p}portmap", "capabilities": {"portMappings": True}}]}
    return cni_conf.parse(json.dumps(raw).encode())


def time_chain(cni: invoker.CNI, net, pod: str, rounds: int) -> tuple[list, list]:
    rt = invoker.RuntimeConf("bench", pod, "eth0", capability_args={
        "portMappings": [{"hostPort": 18999, "containerPort": 80, "protocol": "tcp"}]})
    cni.add(net, rt)  # warm-up: bridge creation, page cache, imports
    cni.delete(net, rt)
    adds, dels = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        cni.add(net, rt)
        t1 = time.perf_counter()
        cni.delete(net, rt)
        t2 = time.perf_counter()
        adds.append(t1 - t0)
        dels.append(t2 - t1)
    return adds, dels


def time_command(argv: list[str], rounds: int, env=None) -> float:
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        subprocess.run(argv, env=env, input=b'{"cniVersion": "1.0.0"}', capture_output=True,
                       check=True)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


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


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    rounds = parser.parse_args().rounds
    work = tempfile.mkdtemp(prefix="pycni-bench-")
    netns_dir = os.path.join(work, "netns")
    bridge = "pybench" + secrets.token_hex(3)
    forward, tables = sysctl.read("net.ipv4.ip_forward"), nft_tables()
    pod = named.create("pod", netns_dir)
    rows = {}
    try:
        for label, ours, in_process in (("reference (exec)", False, False),
                                        ("ours (exec)", True, False),
                                        ("ours (in-process)", True, True)):
            net = chain(f"bench{secrets.token_hex(3)}", bridge, os.path.join(work, "ipam"), ours)
            cni = invoker.CNI(CNI_PATH, os.path.join(work, "cache"), in_process=in_process)
            adds, dels = time_chain(cni, net, pod, rounds)
            rows[label] = (statistics.median(adds), statistics.median(dels),
                           statistics.median([a + d for a, d in zip(adds, dels)]))
    finally:
        named.delete("pod", netns_dir)
        named.release_dir(netns_dir)
        with rtnl.RtnlSocket() as host:
            link = links.get_link(host, bridge)
            if link is not None:
                links.delete_link(host, link.index)
        subprocess.run(["rm", "-rf", work])
        restore_host(forward, tables)

    ref = rows["reference (exec)"][2]
    print(f"ADD+DEL of bridge + host-local + portmap, median of {rounds} rounds")
    print(f"{'':20} {'ADD':>11} {'DEL':>11} {'ADD+DEL':>11}  ratio to reference")
    for label, (add, delete, total) in rows.items():
        print(f"{label:20} {ms(add)} {ms(delete)} {ms(total)}  {total / ref:5.2f}x")

    print(f"\nStart-up of one plugin process (VERSION), median of {rounds}")
    version_env = dict(os.environ, CNI_COMMAND="VERSION")
    start = {
        "reference bridge": time_command(["/usr/lib/cni/bridge"], rounds, version_env),
        "pycni-bridge": time_command([os.path.join(VENV_BIN, "pycni-bridge")], rounds,
                                     version_env),
        "python -c pass": time_command([sys.executable, "-c", "pass"], rounds),
        "import netns.links (lean pyroute2)": time_command(
            [sys.executable, "-c", "import netns.links"], rounds),
        "import pyroute2 (whole package)": time_command(
            [sys.executable, "-c", "import pyroute2"], rounds),
        "import cni.bridge (all a plugin loads)": time_command(
            [sys.executable, "-c", "import cni.bridge"], rounds),
    }
    for label, seconds in start.items():
        print(f"{label:40} {ms(seconds)}")


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("cni_add_del.py: run as root (it creates a netns, a bridge and NAT rules)")
    main()
