"""The iptables NAT backend, for hosts without nftables: each rule set is a few chains of the
nat table named after it (<name>-d for DNAT, <name>-s for SNAT/masquerade), entered by one jump
rule per built-in chain carrying the name as comment. Changes go through iptables-restore
--noflush, so a rule set appears or disappears in one step."""
from __future__ import annotations

import subprocess

from .nat import Masquerade, PortMapping, family_of


def _restore(family: int, script: str) -> None:
    tool = "iptables-restore" if family == 4 else "ip6tables-restore"
    run = subprocess.run([tool, "--noflush", "-w", "5"], input=script.encode(),
                         capture_output=True)
    if run.returncode != 0:
        raise OSError(f"{tool}: {run.stderr.decode().strip()}")


def _save(family: int) -> list[str]:
    tool = "iptables-save" if family == 4 else "ip6tables-save"
    run = subprocess.run([tool, "-t", "nat"], capture_output=True)
    if run.returncode != 0:
        raise OSError(f"{tool}: {run.stderr.decode().strip()}")
    return run.stdout.decode().splitlines()


class IptablesBackend:
    name = "iptables"

    def add_masquerade(self, name: str, owner: str, rules: list[Masquerade]) -> None:
        self.delete(name)
        for family in (4, 6):
            mine = [r for r in rules if family_of(r.ip) == family]
            if not mine:
                continue
            chain = f"{name}-s"
            multicast = "224.0.0.0/4" if family == 4 else "ff00::/8"
            lines = ["*nat", f":{chain} - [0:0]"]
            for r in mine:
                lines.append(f"-A {chain} -d {r.subnet} -j RETURN")
                lines.append(f"-A {chain} ! -d {multicast} -j MASQUERADE")
                lines.append(f'-A POSTROUTING -s {r.ip} -m comment --comment "{name} {owner}" '
                             f"-j {chain}")
            _restore(family, "\n".join(lines + ["COMMIT", ""]))

    def add_port_forward(self, name: str, owner: str, pod_ips: list[str],
                         mappings: list[PortMapping], snat: bool = True) -> None:
        self.delete(name)
        for ip in pod_ips:
            family = family_of(ip)
            dn, sn = f"{name}-d", f"{name}-s"
            lines = ["*nat", f":{dn} - [0:0]"]
            comment = f'-m comment --comment "{name} {owner}"'
            for m in mappings:
                if m.host_ip and family_of(m.host_ip) != family:
                    continue
                dest = f"-d {m.host_ip} " if m.host_ip and m.host_ip not in ("0.0.0.0", "::") \
                    else ""
                target = f"{ip}:{m.container_port}" if family == 4 else \
                    f"[{ip}]:{m.container_port}"
                lines.append(f"-A {dn} {dest}-p {m.protocol} -m {m.protocol} "
                             f"--dport {m.host_port} -j DNAT --to-destination {target}")
            for hook in ("PREROUTING", "OUTPUT"):
                lines.append(f"-A {hook} -m addrtype --dst-type LOCAL {comment} -j {dn}")
            if snat:
                lines.insert(2, f":{sn} - [0:0]")
                sources = [ip, "127.0.0.0/8"] if family == 4 else [ip]
                for m in mappings:
                    for src in sources:
                        lines.append(f"-A {sn} -s {src} -d {ip} -p {m.protocol} -m {m.protocol} "
                                     f"--dport {m.container_port} -m conntrack --ctstate DNAT "
                                     "-j MASQUERADE")
                lines.append(f"-A POSTROUTING {comment} -j {sn}")
            _restore(family, "\n".join(lines + ["COMMIT", ""]))

    def delete(self, name: str) -> bool:
        found = False
        for family in (4, 6):
            saved = _save(family)
            chains = [line[1:].split()[0] for line in saved
                      if line.startswith(f":{name}-")]
            jumps = [line for line in saved if line.startswith("-A ") and
                     any(line.endswith(f"-j {c}") for c in chains)]
            if not chains:
                continue
            found = True
            script = ["*nat"] + ["-D " + j[3:] for j in jumps]
            script += [f"-F {c}" for c in chains] + [f"-X {c}" for c in chains]
            _restore(family, "\n".join(script + ["COMMIT", ""]))
        return found

    def exists(self, name: str) -> bool:
        return any(line.startswith(f":{name}-") for family in (4, 6) for line in _save(family))

    def names(self, prefix: str) -> list[str]:
        found = set()
        for family in (4, 6):
            for line in _save(family):
                if line.startswith(":" + prefix):
                    found.add(line[1:].split()[0].rsplit("-", 1)[0])
        return sorted(found)

    def dump(self, name: str) -> str:
        return "\n".join(line for family in (4, 6) for line in _save(family) if name in line)
