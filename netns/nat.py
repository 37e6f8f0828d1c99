"""NAT rules for pod networks: masquerade of a pod's traffic leaving its subnet, and host ports
forwarded (DNAT) to a pod, also from localhost. Each rule set has a unique name and lives in its
own nftables table (nat_nftables.py) or its own iptables chains (nat_iptables.py), so removing
it removes exactly what was added; nat_backend chooses between the two.

Names are `pycni-<kind>-<network hash>-<attachment hash>` (see rule_set_name): GC finds the sets
of one network and keeps those whose attachment is still valid, without parsing anything."""
from __future__ import annotations

import ipaddress

# hashlib loads OpenSSL first, 4 ms of a plugin process for one short hash: the interpreter's
# own SHA-256 where it has one.
try:
    from _sha2 import sha256  # Python 3.12 on
except ImportError:
    try:
        from _sha256 import sha256
    except ImportError:
        from hashlib import sha256


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
    return sha256(text.encode()).hexdigest()[:length]


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

