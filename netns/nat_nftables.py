"""The nftables NAT backend: each rule set is one `inet` table named after it, with its own nat
base chains; it is added in one transaction and removed by deleting the table."""
from __future__ import annotations

import ipaddress

from .nat import Masquerade, PortMapping, family_of
from .nftables import Nft


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
    """See the module docstring."""

    name = "nftables"

    def __init__(self) -> None:
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
