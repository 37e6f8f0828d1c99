"""NAT rules for pod networks: masquerade of a pod's traffic leaving its subnet, and host ports
forwarded (DNAT) to a pod, also from localhost. Each rule set has a unique name and lives in its
own nftables table (or its own iptables chains), so removing it removes exactly what was added.

Names are `pycni-<kind>-<network hash>-<attachment hash>` (see rule_set_name): GC finds the sets
of one network and keeps those whose attachment is still valid, without parsing anything."""
from __future__ import annotations

import hashlib
import ipaddress


class PortMapping:
    __slots__ = ("host_port", "container_port", "protocol", "host_ip")

    def __init__(self, host_port: int, container_port: int, protocol: str = "tcp",
                 host_ip: str = "") -> None:
        self.host_port = host_port
        self.container_port = container_port
        self.protocol = protocol
        self.host_ip = host_ip

    def __repr__(self) -> str:
        return (f"PortMapping({self.host_ip or '*'}:{self.host_port} -> :{self.container_port}"
                f"/{self.protocol})")


def _hash(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def network_prefix(kind: str, network: str) -> str:
    return f"pycni-{kind}-{_hash(network, 8)}-"


def rule_set_name(kind: str, network: str, container_id: str, ifname: str) -> str:
    """The name of the rule set of `kind` ('mq' masquerade, 'hp' host ports) for one attachment:
    26 characters, so that iptables chains named after it (+2) fit the 28-character limit."""
    return network_prefix(kind, network) + _hash(f"{container_id}\0{ifname}", 8)


def family_of(ip: str) -> int:
    return 6 if ":" in ip else 4


class Masquerade:
    """Masquerade traffic from `ip` to anything outside `subnet` and multicast."""

    __slots__ = ("ip", "subnet")

    def __init__(self, cidr: str) -> None:
        iface = ipaddress.ip_interface(cidr)
        self.ip = str(iface.ip)
        self.subnet = str(iface.network)


def nft_masquerade(name: str, owner: str, rules: list[Masquerade]) -> str:
    lines = []
    for r in rules:
        if family_of(r.ip) == 4:
            lines.append(f"ip saddr {r.ip} ip daddr != {r.subnet} ip daddr != 224.0.0.0/4 "
                         "masquerade")
        else:
            lines.append(f"ip6 saddr {r.ip} ip6 daddr != {r.subnet} ip6 daddr != ff00::/8 "
                         "masquerade")
    return _table(name, owner, {"postrouting": ("postrouting", 100, lines)})


def nft_port_forward(name: str, owner: str, pod_ips: list[str], mappings: list[PortMapping],
                     snat: bool) -> str:
    dnat, snat_lines = [], []
    for ip in pod_ips:
        fam = "ip" if family_of(ip) == 4 else "ip6"
        for m in mappings:
            if m.host_ip and family_of(m.host_ip) != family_of(ip):
                continue
            unspecified = not m.host_ip or ipaddress.ip_address(m.host_ip).is_unspecified
            match = (f"meta nfproto ipv{family_of(ip)} fib daddr type local" if unspecified
                     else f"{fam} daddr {m.host_ip}")
            target = f"{ip}:{m.container_port}" if fam == "ip" else f"[{ip}]:{m.container_port}"
            dnat.append(f"{match} {m.protocol} dport {m.host_port} dnat {fam} to {target}")
            if snat:
                to_pod = f"{fam} daddr {ip} {m.protocol} dport {m.container_port}"
                # A pod reaching itself through the host port (hairpin) ...
                snat_lines.append(f"ct status dnat {fam} saddr {ip} {to_pod} masquerade")
                if fam == "ip":  # ... and the host through 127.0.0.1 (needs route_localnet)
                    snat_lines.append(f"ct status dnat ip saddr 127.0.0.0/8 {to_pod} masquerade")
    chains = {"prerouting": ("prerouting", -100, dnat), "output": ("output", -100, dnat)}
    if snat_lines:
        chains["postrouting"] = ("postrouting", 100, snat_lines)
    return _table(name, owner, chains)


def _table(name: str, owner: str, chains: dict) -> str:
    out = [f"table inet {name} {{", f'  comment "{owner}"']
    for chain, (hook, priority, rules) in chains.items():
        out.append(f"  chain {chain} {{")
        out.append(f"    type nat hook {hook} priority {priority}; policy accept;")
        out.extend(f"    {rule}" for rule in rules)
        out.append("  }")
    out.append("}")
    return "\n".join(out) + "\n"


class NftBackend:
    """Each rule set is one `inet` table: added in one transaction, removed by deleting it."""

    name = "nftables"

    def __init__(self) -> None:
        from .nftables import Nft

        self._nft = Nft()

    def add_masquerade(self, name: str, owner: str, rules: list[Masquerade]) -> None:
        self._replace(name, nft_masquerade(name, owner, rules))

    def add_port_forward(self, name: str, owner: str, pod_ips: list[str],
                         mappings: list[PortMapping], snat: bool = True) -> None:
        self._replace(name, nft_port_forward(name, owner, pod_ips, mappings, snat))

    def _replace(self, name: str, table: str) -> None:
        # add + delete + define in one transaction: a second ADD replaces, never duplicates.
        self._nft.run(f"add table inet {name}\ndelete table inet {name}\n{table}")

    def delete(self, name: str) -> bool:
        if not self.exists(name):
            return False
        self._nft.run(f"delete table inet {name}")
        return True

    def exists(self, name: str) -> bool:
        return ("inet", name) in self._nft.tables()

    def names(self, prefix: str) -> list[str]:
        return [n for fam, n in self._nft.tables() if fam == "inet" and n.startswith(prefix)]

    def dump(self, name: str) -> str:
        return self._nft.run(f"list table inet {name}")


def host_backend(choice: str = ""):
    """The NAT backend to use: `choice` ('nftables' or 'iptables') if given, else nftables when
    libnftables is installed, else iptables."""
    from . import nftables

    if choice == "nftables" or (not choice and nftables.available()):
        return NftBackend()
    if choice in ("", "iptables"):
        from .iptables import IptablesBackend

        return IptablesBackend()
    raise ValueError(f"unknown NAT backend {choice!r} (nftables or iptables)")
