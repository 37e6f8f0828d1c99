"""A pod's name resolution as the kubelet writes it (pkg/kubelet/network/dns and
kubelet_pods.go): its hostname and domain, the "Kubernetes-managed hosts file", and resolv.conf
per dnsPolicy (ClusterFirst, ClusterFirstWithHostNet, Default, None) with dnsConfig merged in.
Pure text; etc_files.py writes it."""
from __future__ import annotations

from dataclasses import dataclass, field

from kubelet.pods import Pod

HOSTS_HEADER = "# Kubernetes-managed hosts file.\n"
HOSTS_HEADER_HOST_NETWORK = "# Kubernetes-managed hosts file (host network).\n"
MAX_NAMESERVERS = 3
MAX_SEARCHES = 32
CLUSTER_NDOTS = 5


@dataclass
class DNSConfig:
    nameservers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)


def hostname_and_domain(pod: Pod, cluster_domain: str) -> tuple[str, str]:
    """spec.hostname or the pod's name (at most 63 characters, no trailing - or .), and with a
    subdomain <subdomain>.<namespace>.svc.<clusterDomain>."""
    name = pod.hostname or pod.name[:63].rstrip("-.")
    domain = ""
    if pod.subdomain:
        domain = f"{pod.subdomain}.{pod.namespace}.svc.{cluster_domain}".rstrip(".")
    return name, domain


def _aliases(pod: Pod) -> str:
    aliases = pod.host_aliases
    if not aliases:
        return ""
    lines = ["", "# Entries added by HostAliases."]
    lines += [f"{a.get('ip', '')}\t" + "\t".join(a.get("hostnames") or []) for a in aliases]
    return "\n".join(lines) + "\n"


def hosts_file(pod: Pod, pod_ips: list[str], cluster_domain: str, node_hosts: str) -> str:
    """The pod's /etc/hosts; a hostNetwork pod gets the node's (node_hosts) under its own
    header."""
    if pod.host_network:
        return HOSTS_HEADER_HOST_NETWORK + node_hosts + _aliases(pod)
    name, domain = hostname_and_domain(pod, cluster_domain)
    text = (HOSTS_HEADER + "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            "fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\n"
            "fe00::2\tip6-allrouters\n")
    for ip in pod_ips:
        text += f"{ip}\t{name}.{domain}\t{name}\n" if domain else f"{ip}\t{name}\n"
    return text + _aliases(pod)


def parse_resolv_conf(text: str) -> DNSConfig:
    """nameserver lines, the last search line, the options (as the kubelet reads the node's)."""
    config = DNSConfig()
    for line in text.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if not words:
            continue
        if words[0] == "nameserver" and len(words) > 1:
            config.nameservers.append(words[1])
        elif words[0] == "search":
            config.searches = [s for s in words[1:] if s != "."]
        elif words[0] == "options":
            config.options += words[1:]
    return config


def effective_policy(pod: Pod, cluster_dns: list[str]) -> str:
    """ClusterFirst on the host network is Default (ClusterFirstWithHostNet is what asks for
    the cluster's DNS there), and so is ClusterFirst when no cluster DNS is configured (the
    kubelet falls back, with a MissingClusterDNS event)."""
    policy = pod.dns_policy
    if policy == "ClusterFirstWithHostNet":
        policy = "ClusterFirst"
    elif policy == "ClusterFirst" and pod.host_network:
        policy = "Default"
    if policy == "ClusterFirst" and not cluster_dns:
        policy = "Default"
    return policy


def pod_dns(pod: Pod, node: DNSConfig, cluster_dns: list[str], cluster_domain: str
            ) -> DNSConfig:
    policy = effective_policy(pod, cluster_dns)
    if policy == "None":
        result = DNSConfig()
    elif policy == "Default":
        result = DNSConfig(list(node.nameservers), list(node.searches), list(node.options))
    else:
        ns = pod.namespace
        searches = [f"{ns}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain] \
            if cluster_domain else []
        result = DNSConfig(list(cluster_dns), searches + node.searches,
                           [f"ndots:{CLUSTER_NDOTS}"])
    extra = pod.dns_config
    result.nameservers += [str(n) for n in extra.get("nameservers") or []]
    for s in extra.get("searches") or []:
        if s not in result.searches:
            result.searches.append(str(s))
    result.options = _merge_options(result.options, extra.get("options") or [])
    result.nameservers = result.nameservers[:MAX_NAMESERVERS]
    result.searches = result.searches[:MAX_SEARCHES]
    return result


def _merge_options(base: list[str], extra: list[dict]) -> list[str]:
    """By name, dnsConfig's last: "ndots:5" + {name: ndots, value: "2"} = "ndots:2"."""
    merged: dict[str, str] = {}
    for opt in base:
        name, _, value = opt.partition(":")
        merged[name] = opt
    for opt in extra:
        name = str(opt.get("name", ""))
        value = opt.get("value")
        merged[name] = f"{name}:{value}" if value is not None else name
    return list(merged.values())


def resolv_conf(config: DNSConfig) -> str:
    text = f"search {' '.join(config.searches)}\n" if config.searches else ""
    text += "".join(f"nameserver {n}\n" for n in config.nameservers)
    if config.options:
        text += f"options {' '.join(config.options)}\n"
    return text
