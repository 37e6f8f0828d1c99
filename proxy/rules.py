"""The nftables rules of the proxy, in kube-proxy's nftables-mode layout: one `ip` table whose
base chains and verdict maps are fixed (`base_table`), and per Service its own chains, affinity
sets and map elements (`service_rules`), which the syncer adds, replaces and removes as a unit.

Per Service port (names as kube-proxy's: a hash of "ns/svc/proto/port" keeps them unique):
- `service-H-ns/svc/tcp/p`: the Cluster policy chain, a `numgen random mod N vmap` over the
  endpoint chains (an equal random choice), after one rule per endpoint for ClientIP affinity;
- `local-H-...`: the same over this node's endpoints, for a Local traffic policy;
- `external-H-...`: where NodePort and external IPs go: masquerade, then the policy chain;
- `endpoint-H-...__ip/port`: masquerade a pod reaching itself (hairpin), remember the client in
  the affinity set, DNAT.
A Service without usable endpoints gets no chains, only elements of the no-endpoint maps that
the filter hooks use to reject (clients fail at once) or, for a Local policy, drop."""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

from .model import Endpoint, ServicePort, choose_endpoints

MASQ_MARK = "0x4000"
CHAIN_NAME_MAX = 256  # NFT_CHAIN_MAXNAMELEN, with the NUL


@dataclass(frozen=True)
class ProxyOptions:
    """The flags that shape the rules."""
    table: str = "pykube-proxy"
    node_name: str = ""
    cluster_cidrs: tuple[str, ...] = ()    # --cluster-cidr: which sources are pods
    masquerade_all: bool = False
    nodeport_ips: tuple[str, ...] | None = None  # None: every local address but 127/8


@dataclass(frozen=True)
class Element:
    """An element of a set or map of the table (value: the verdict of a map element)."""
    container: str
    key: str
    value: str = ""
    comment: str = ""

    def add(self, table: str) -> str:
        comment = f' comment "{self.comment}"' if self.comment else ""
        value = f" : {self.value}" if self.value else ""
        return f"add element ip {table} {self.container} {{ {self.key}{comment}{value} }}"

    def delete(self, table: str) -> str:
        return f"delete element ip {table} {self.container} {{ {self.key} }}"


@dataclass
class ServiceRules:
    """Everything of one Service in the table."""
    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> rules
    sets: dict[str, str] = field(default_factory=dict)                # name -> definition
    elements: dict[tuple[str, str], Element] = field(default_factory=dict)

    def add_element(self, element: Element) -> None:
        self.elements[(element.container, element.key)] = element


def hash_name(prefix: str, base: str) -> str:
    """kube-proxy's hashAndTruncate: the first 8 base32 characters of the SHA-256 of `base`,
    then `base` itself, for a readable name that stays unique when truncated."""
    digest = base64.b32encode(hashlib.sha256(base.encode()).digest()).decode()[:8]
    name = f"{prefix}-{digest}-{base}"
    return name if len(name) < CHAIN_NAME_MAX else name[:CHAIN_NAME_MAX - 4] + "..."


def endpoint_base(sp: ServicePort, ep: Endpoint) -> str:
    return f"{sp.chain_base}__{ep.ip}/{ep.port}"


def _pod_sources(opts: ProxyOptions) -> str:
    return ", ".join(opts.cluster_cidrs)


def _nodeport_match(opts: ProxyOptions) -> str:
    if opts.nodeport_ips is None:
        # kube-proxy's nftables mode never serves NodePorts on 127.0.0.0/8 (no route_localnet).
        return "fib daddr type local ip daddr != 127.0.0.0/8"
    return "ip daddr @nodeport-ips"


def base_table(opts: ProxyOptions) -> list[str]:
    """The table, its maps and its base chains, as `nft -f` commands (the table must not
    exist: the full sync deletes it first)."""
    t = f"ip {opts.table}"
    cmds = [
        f'add table {t} {{ comment "rules for pykube-proxy" ; }}',
        f'add set {t} cluster-ips {{ type ipv4_addr ; comment "Active ClusterIPs" ; }}',
        f"add map {t} no-endpoint-nodeports {{ type inet_proto . inet_service : verdict ; "
        'comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }',
        f"add map {t} no-endpoint-services {{ type ipv4_addr . inet_proto . inet_service : "
        'verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }',
        f"add map {t} service-ips {{ type ipv4_addr . inet_proto . inet_service : verdict ; "
        'comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }',
        f"add map {t} service-nodeports {{ type inet_proto . inet_service : verdict ; "
        'comment "NodePort traffic" ; }',
        f"add chain {t} cluster-ips-check",
        f"add chain {t} filter-forward {{ type filter hook forward priority 0 ; }}",
        f"add chain {t} filter-input {{ type filter hook input priority 0 ; }}",
        f"add chain {t} filter-output {{ type filter hook output priority 0 ; }}",
        f"add chain {t} mark-for-masquerade",
        f"add chain {t} masquerading",
        f"add chain {t} nat-output {{ type nat hook output priority -100 ; }}",
        f"add chain {t} nat-postrouting {{ type nat hook postrouting priority 100 ; }}",
        f"add chain {t} nat-prerouting {{ type nat hook prerouting priority -100 ; }}",
        f"add chain {t} nodeport-endpoints-check",
        f'add chain {t} reject-chain {{ comment "helper for @no-endpoint-services / '
        '@no-endpoint-nodeports" ; }',
        f"add chain {t} services",
        f"add chain {t} service-endpoints-check",
        f'add rule {t} cluster-ips-check ip daddr @cluster-ips reject comment '
        '"Reject traffic to invalid ports of ClusterIPs"',
        f"add rule {t} filter-forward ct state new jump service-endpoints-check",
        f"add rule {t} filter-forward ct state new jump cluster-ips-check",
        f"add rule {t} filter-input ct state new jump nodeport-endpoints-check",
        f"add rule {t} filter-input ct state new jump service-endpoints-check",
        f"add rule {t} filter-output ct state new jump service-endpoints-check",
        f"add rule {t} filter-output ct state new jump cluster-ips-check",
        f"add rule {t} mark-for-masquerade mark set mark or {MASQ_MARK}",
        f"add rule {t} masquerading mark and {MASQ_MARK} == 0 return",
        f"add rule {t} masquerading mark set mark xor {MASQ_MARK}",
        f"add rule {t} masquerading masquerade fully-random",
        f"add rule {t} nat-output jump services",
        f"add rule {t} nat-postrouting jump masquerading",
        f"add rule {t} nat-prerouting jump services",
        f"add rule {t} nodeport-endpoints-check {_nodeport_match(opts)} "
        "meta l4proto . th dport vmap @no-endpoint-nodeports",
        f"add rule {t} reject-chain reject",
        f"add rule {t} services ip daddr . meta l4proto . th dport vmap @service-ips",
        f"add rule {t} services {_nodeport_match(opts)} "
        "meta l4proto . th dport vmap @service-nodeports",
        f"add rule {t} service-endpoints-check ip daddr . meta l4proto . th dport "
        "vmap @no-endpoint-services",
    ]
    if opts.nodeport_ips is not None:
        cmds.insert(2, f'add set {t} nodeport-ips {{ type ipv4_addr ; comment '
                       '"IPs that accept NodePort traffic" ; }')
        if opts.nodeport_ips:
            cmds.append(f"add element {t} nodeport-ips {{ {', '.join(opts.nodeport_ips)} }}")
    return cmds


def service_rules(ports: list[ServicePort], opts: ProxyOptions) -> ServiceRules:
    """The chains, sets and elements of one Service (all its ports)."""
    out = ServiceRules()
    for sp in ports:
        _port_rules(sp, opts, out)
    return out


def _port_rules(sp: ServicePort, opts: ProxyOptions, out: ServiceRules) -> None:
    choice = choose_endpoints(sp, opts.node_name)
    uses_cluster_eps = not sp.internal_local or sp.externally_accessible
    uses_local_eps = sp.internal_local or (sp.external_local and sp.externally_accessible)
    cluster_eps = choice.cluster if uses_cluster_eps else ()
    local_eps = choice.local if uses_local_eps else ()
    has_endpoints = choice.any_usable
    cluster_chain = hash_name("service", sp.chain_base)
    local_chain = hash_name("local", sp.chain_base)
    external_chain = hash_name("external", sp.chain_base)

    has_internal = has_endpoints and (not sp.internal_local or bool(local_eps))
    internal_chain = local_chain if sp.internal_local else cluster_chain
    has_external = has_endpoints and (not sp.external_local or bool(local_eps))
    external_policy_chain = local_chain if sp.external_local else cluster_chain
    uses_external_chain = has_endpoints and sp.externally_accessible
    if not has_endpoints:
        internal_verdict = external_verdict = "goto reject-chain"
    else:
        internal_verdict = external_verdict = "drop"

    key = f"{sp.protocol} . {sp.port}"
    out.add_element(Element("cluster-ips", sp.cluster_ip))
    if has_internal:
        out.add_element(Element("service-ips", f"{sp.cluster_ip} . {key}",
                                f"goto {internal_chain}"))
    else:
        out.add_element(Element("no-endpoint-services", f"{sp.cluster_ip} . {key}",
                                internal_verdict, sp.key))
    for ip in sp.external_ips:
        if has_endpoints:
            out.add_element(Element("service-ips", f"{ip} . {key}", f"goto {external_chain}"))
        if not has_external:
            out.add_element(Element("no-endpoint-services", f"{ip} . {key}", external_verdict,
                                    sp.key))
    if sp.node_port:
        nodeport_key = f"{sp.protocol} . {sp.node_port}"
        if has_endpoints:
            out.add_element(Element("service-nodeports", nodeport_key, f"goto {external_chain}"))
        if not has_external:
            out.add_element(Element("no-endpoint-nodeports", nodeport_key, external_verdict,
                                    sp.key))

    chains: dict[str, list[str]] = {}
    if cluster_eps:
        chains[cluster_chain] = []
    if local_eps:
        chains[local_chain] = []
    if has_internal:
        match = f"ip daddr {sp.cluster_ip} {sp.protocol} dport {sp.port}"
        if opts.masquerade_all:
            chains[internal_chain].append(f"{match} jump mark-for-masquerade")
        elif opts.cluster_cidrs:
            # Off-cluster clients reach a ClusterIP through a route to this node: their
            # answers must come back here to be un-DNATed.
            chains[internal_chain].append(
                f"{match} ip saddr != {{ {_pod_sources(opts)} }} jump mark-for-masquerade")
    if uses_external_chain:
        rules = chains.setdefault(external_chain, [])
        if not sp.external_local:
            rules.append("jump mark-for-masquerade")
        else:
            if opts.cluster_cidrs:
                rules.append(f"ip saddr {{ {_pod_sources(opts)} }} goto {cluster_chain} "
                             'comment "short-circuit pod traffic"')
            rules.append('fib saddr type local jump mark-for-masquerade comment '
                         '"masquerade local traffic"')
            rules.append(f'fib saddr type local goto {cluster_chain} comment '
                         '"short-circuit local traffic"')
        if has_external:
            rules.append(f"goto {external_policy_chain}")
    if cluster_eps:
        chains[cluster_chain] += _balance(sp, cluster_eps)
    if local_eps:
        chains[local_chain] += _balance(sp, local_eps)
    for ep in dict.fromkeys(cluster_eps + local_eps):
        base = endpoint_base(sp, ep)
        rules = [f"ip saddr {ep.ip} jump mark-for-masquerade"]
        if sp.affinity_timeout:
            affinity = hash_name("affinity", base)
            out.sets[affinity] = (f"{{ type ipv4_addr ; flags dynamic,timeout ; "
                                  f"timeout {sp.affinity_timeout}s ; }}")
            rules.append(f"update @{affinity} {{ ip saddr }}")
        rules.append(f"meta l4proto {sp.protocol} dnat to {ep.ip}:{ep.port}")
        chains[hash_name("endpoint", base)] = rules
    for name, rules in chains.items():
        out.chains[name] = tuple(rules)


def _balance(sp: ServicePort, endpoints: tuple[Endpoint, ...]) -> list[str]:
    rules = []
    if sp.affinity_timeout:
        for ep in endpoints:
            base = endpoint_base(sp, ep)
            rules.append(f"ip saddr @{hash_name('affinity', base)} "
                         f"goto {hash_name('endpoint', base)}")
    choices = " , ".join(f"{i} : goto {hash_name('endpoint', endpoint_base(sp, ep))}"
                         for i, ep in enumerate(endpoints))
    rules.append(f"numgen random mod {len(endpoints)} vmap {{ {choices} }}")
    return rules
