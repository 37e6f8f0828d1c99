"""What the cross-node route backends read from the Node objects: each node's podCIDRs and
InternalIP (IPv4; the IPv6 ones are not routed)."""
from __future__ import annotations

import ipaddress


def internal_ip(node: dict) -> str:
    """The node's IPv4 InternalIP, '' if none."""
    return next((a.get("address", "") for a in (node.get("status") or {}).get("addresses") or []
                 if a.get("type") == "InternalIP"
                 and ipaddress.ip_address(a.get("address", "0.0.0.0")).version == 4), "")


def pod_cidrs(node: dict) -> list[str]:
    """The node's IPv4 podCIDRs, normalized."""
    spec = node.get("spec") or {}
    cidrs = spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else [])
    networks = [ipaddress.ip_network(c, strict=False) for c in cidrs]
    return [str(n) for n in networks if n.version == 4]


def wanted_routes(nodes: list[dict], own_name: str) -> dict[str, str]:
    """podCIDR -> the node's InternalIP, for every other node that has both."""
    found: dict[str, str] = {}
    for node in nodes:
        address = internal_ip(node)
        if (node.get("metadata") or {}).get("name") == own_name or not address:
            continue
        for cidr in pod_cidrs(node):
            found[cidr] = address
    return found


def own_node(nodes: list[dict], name: str) -> tuple[str, str] | None:
    """(InternalIP, first podCIDR) of the node `name`, None until it has both."""
    for node in nodes:
        if (node.get("metadata") or {}).get("name") == name:
            address, cidrs = internal_ip(node), pod_cidrs(node)
            return (address, cidrs[0]) if address and cidrs else None
    return None
