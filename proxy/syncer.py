"""Programs the table: a full sync that replaces whatever is there (a previous run's rules
included) and incremental syncs that rewrite only the chains, sets and map elements of the
Services that changed. Each sync is ONE libnftables transaction (netns/nftables.py, the library
behind `nft -f`): the kernel applies all of it or nothing, so packets never see half the rules.

Chains a change leaves unused are deleted in the same transaction. Kernels before 6.2 notice
only a moment later that a deleted map element no longer references its chain (kube-proxy's
staleChains comment), so there they are flushed at once and deleted by a later sync
(`delete_stale`), after STALE_CHAIN_DELAY."""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from . import conntrack
from .model import ServicePort, choose_endpoints
from .rules import ProxyOptions, ServiceRules, base_table, service_rules

log = logging.getLogger("pykube-proxy")

STALE_CHAIN_DELAY = 1.0  # seconds


def _kernel_deletes_at_once() -> bool:
    release = os.uname().release.split("-")[0].split(".")
    try:
        return (int(release[0]), int(release[1])) >= (6, 2)
    except (IndexError, ValueError):
        return False


@dataclass
class SyncStats:
    transactions: int = 0          # libnftables runs
    last_transaction: str = ""     # the text of the last one
    conntrack_deleted: int = 0


@dataclass
class _Installed:
    ports: list[ServicePort]
    rules: ServiceRules


@dataclass
class Syncer:
    """See the module docstring. `run` executes nft commands (Nft().run by default)."""
    opts: ProxyOptions
    run: Callable[[str], str]
    clear_conntrack: Callable[[list[conntrack.StaleFlow]], int] = conntrack.clear
    delete_chains_at_once: bool = field(default_factory=_kernel_deletes_at_once)
    stats: SyncStats = field(default_factory=SyncStats)
    _installed: dict[str, _Installed] = field(default_factory=dict)
    _stale_chains: dict[str, float] = field(default_factory=dict)  # name -> since (monotonic)

    @property
    def table(self) -> str:
        return f"ip {self.opts.table}"

    def full_sync(self, services: dict[str, list[ServicePort]]) -> None:
        """Replaces the whole table with the rules of `services` (key -> its ports)."""
        installed: dict[str, _Installed] = {}
        owners: dict[tuple[str, str], str] = {}
        for key in sorted(services):
            if services[key]:
                installed[key] = _Installed(services[key], self._rules(key, services[key],
                                                                       owners))
        # add + delete: the delete cannot fail on a table that is not there yet.
        cmds = [f"add table {self.table}", f"delete table {self.table}"]
        cmds += base_table(self.opts)
        for item in installed.values():
            cmds += self._create(item.rules)
        self._apply(cmds)
        self._installed = installed
        self._stale_chains.clear()
        # What the previous rules did is unknown; flows that met none are known by their
        # entries (a Service first programmed now, or by a proxy that was down meanwhile).
        self.stats.conntrack_deleted += self.clear_conntrack(
            [f for item in installed.values()
             for f in _stale_flows([], item.ports, self.opts.node_name)])

    def sync(self, changed: dict[str, list[ServicePort]]) -> bool:
        """Brings the Services of `changed` (key -> its ports now, [] when deleted) to their new
        rules in one transaction; returns False when nothing had to change."""
        old_rules, new_items, flows = [], {}, []
        owners = {k: o for o, item in self._installed.items() if o not in changed
                  for k in item.rules.elements}
        for key in sorted(changed):
            ports = changed[key]
            old = self._installed.get(key)
            new = _Installed(ports, self._rules(key, ports, owners)) if ports else None
            old_rules.append(old.rules if old else ServiceRules())
            new_items[key] = new
            flows += _stale_flows(old.ports if old else [], ports, self.opts.node_name)
        cmds = self._diff(old_rules, [n.rules if n else ServiceRules()
                                      for n in new_items.values()])
        if cmds:
            self._apply(cmds)
        for key, item in new_items.items():
            if item is None:
                self._installed.pop(key, None)
            else:
                self._installed[key] = item
        self.stats.conntrack_deleted += self.clear_conntrack(flows)
        return bool(cmds)

    def delete_stale(self, now: float | None = None) -> None:
        """Deletes chains flushed by earlier syncs (kernels before 6.2 only)."""
        now = time.monotonic() if now is None else now
        due = [c for c, since in self._stale_chains.items() if now - since >= STALE_CHAIN_DELAY]
        if due:
            self._apply([f"delete chain {self.table} {c}" for c in due])
            for chain in due:
                del self._stale_chains[chain]

    def table_exists(self) -> bool:
        """False when someone deleted the table (`nft flush ruleset`, a firewall reload): then
        only a full sync brings it back."""
        return f"table {self.table}" in self.run("list tables").splitlines()

    def cleanup(self) -> None:
        """Removes the table (kube-proxy's --cleanup)."""
        self.run(f"add table {self.table}\ndelete table {self.table}")
        self.stats.transactions += 1
        self._installed.clear()

    def _rules(self, key: str, ports: list[ServicePort],
               owners: dict[tuple[str, str], str]) -> ServiceRules:
        """The Service's rules without the map elements another Service holds already (two
        Services may name the same external IP and port; the API does not forbid it): the
        first keeps it, as adding the second would fail the whole transaction. `owners`
        (element key -> Service) gains this Service's elements."""
        rules = service_rules(ports, self.opts)
        for k in list(rules.elements):
            owner = owners.setdefault(k, key)
            if owner != key:
                log.warning("%s: %s %s is %s's already; left out", key, k[0], k[1], owner)
                del rules.elements[k]
        return rules

    def _apply(self, cmds: list[str]) -> None:
        text = "\n".join(cmds) + "\n"
        self.stats.transactions += 1
        self.stats.last_transaction = text
        self.run(text)

    def _create(self, rules: ServiceRules) -> list[str]:
        t = self.table
        cmds = [f"add set {t} {name} {spec}" for name, spec in rules.sets.items()]
        cmds += [f"add chain {t} {name}" for name in rules.chains]
        cmds += [f"add rule {t} {name} {r}" for name, rs in rules.chains.items() for r in rs]
        cmds += [e.add(self.opts.table) for e in rules.elements.values()]
        return cmds

    def _diff(self, olds: list[ServiceRules], news: list[ServiceRules]) -> list[str]:
        old, new = _merge(olds), _merge(news)
        t, table = self.table, self.opts.table
        gone_elements = [e for k, e in old.elements.items() if new.elements.get(k) != e]
        added_elements = [e for k, e in new.elements.items() if old.elements.get(k) != e]
        # A set whose timeout changed is made anew (nft cannot change a set's timeout), and
        # the chains that use it are rewritten around it.
        stale_sets = [s for s, spec in old.sets.items() if new.sets.get(s) != spec]
        added_sets = [s for s, spec in new.sets.items() if old.sets.get(s) != spec]
        remade = [f"@{s}" for s in stale_sets if s in new.sets]
        changed_chains = [c for c, rs in new.chains.items() if c in old.chains and (
            old.chains[c] != rs or any(s in r for s in remade for r in rs))]
        added_chains = [c for c in new.chains if c not in old.chains]
        stale_chains = [c for c in old.chains if c not in new.chains]

        cmds = [e.delete(table) for e in gone_elements]
        cmds += [f"flush chain {t} {c}" for c in changed_chains + stale_chains]
        cmds += [f"delete set {t} {s}" for s in stale_sets]
        cmds += [f"add set {t} {s} {new.sets[s]}" for s in added_sets]
        for chain in added_chains:
            # A chain flushed on an old kernel and still waiting to be deleted is reused
            # (adding a chain that exists is no error).
            self._stale_chains.pop(chain, None)
            cmds.append(f"add chain {t} {chain}")
        cmds += [f"add rule {t} {c} {r}" for c in changed_chains + added_chains
                 for r in new.chains[c]]
        cmds += [e.add(table) for e in added_elements]
        if self.delete_chains_at_once:
            cmds += [f"delete chain {t} {c}" for c in stale_chains]
        else:
            now = time.monotonic()
            self._stale_chains.update((c, now) for c in stale_chains)
        return cmds


def _merge(parts: list[ServiceRules]) -> ServiceRules:
    out = ServiceRules()
    for p in parts:
        out.chains.update(p.chains)
        out.sets.update(p.sets)
        out.elements.update(p.elements)
    return out


def _stale_flows(old: list[ServicePort], new: list[ServicePort],
                 node_name: str) -> list[conntrack.StaleFlow]:
    """The flows that the change strands: UDP ones DNATed to an endpoint no longer used, and
    UDP ones to a Service port that had no endpoint and now has one (kube-proxy clears both);
    and of any protocol, those that met no DNAT at a Service address that has endpoints now
    (see the conntrack module)."""
    def used(sp: ServicePort) -> set[str]:
        choice = choose_endpoints(sp, node_name)
        return {e.ip for e in choice.cluster + choice.local}

    new_by_name = {(sp.port_name, sp.protocol): sp for sp in new}
    flows = []
    for sp in old:
        if sp.protocol != "udp":
            continue
        now = new_by_name.get((sp.port_name, sp.protocol))
        before = used(sp)
        after = used(now) if now else set()
        for ip in sorted(before - after):
            flows.append(conntrack.StaleFlow(sp.cluster_ip, sp.port, ip))
            flows += [conntrack.StaleFlow(x, sp.port, ip) for x in sp.external_ips]
            if sp.node_port:
                flows.append(conntrack.StaleFlow("", sp.node_port, ip))
    old_by_name = {(sp.port_name, sp.protocol): sp for sp in old}
    for sp in new:
        prev = old_by_name.get((sp.port_name, sp.protocol))
        if not used(sp) or (prev is not None and used(prev)):
            continue
        if sp.protocol == "udp" and prev is not None:
            flows.append(conntrack.StaleFlow(sp.cluster_ip, sp.port))
        flows += [conntrack.StaleFlow(ip, sp.port, ip, sp.protocol)
                  for ip in (sp.cluster_ip, *sp.external_ips)]
    return flows
