"""pycni-hostgw's vxlan backend, as flannel's: for nodes that are not on one L2 segment. Each
node has one VXLAN device (VNI 1, UDP 8472, no learning) holding its podCIDR's network address
as a /32; for every other node it keeps, all on that device,

    FDB entry    the remote device's MAC -> the remote node's InternalIP (the outer packet's
                 destination, reached by whatever routes the underlay has),
    neighbour    the remote podCIDR's network address -> that MAC (permanent, no ARP across),
    route        the remote podCIDR via that address, onlink.

A device's MAC is made from its node's InternalIP (0e:76 and the four address bytes), so a node
learns every remote MAC from the Node objects alone: the daemon writes nothing to the API (no
annotations to publish, as flannel must) and needs only to read Nodes. Everything on the device
is the daemon's, so each sync makes its entries exactly the wanted ones, and a restarted daemon
adopts what it finds there. Through pyroute2: its vxlan link attributes and bridge FDB requests
are what our own netlink packers (netns/) do not cover, and a daemon started once per node does
not pay pyroute2's import on every pod as a CNI plugin would."""
from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from dataclasses import dataclass, field

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from .node_routes import own_node, wanted_routes

log = logging.getLogger("pycni-hostgw")
DEVICE = "pycni.1"
VNI = 1
PORT = 8472            # the Linux and flannel default, not IANA's 4789
OVERHEAD = 50          # outer IPv4 + UDP + VXLAN + inner Ethernet headers
NUD_PERMANENT = 0x80
NTF_SELF = 0x2         # the entry is the vxlan device's own, not a bridge master's
RTNH_F_ONLINK = 0x4


def vtep_mac(node_ip: str) -> str:
    """Locally administered, unicast, one per node address."""
    return "0e:76:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(node_ip).packed)


def vtep_ip(pod_cidr: str) -> str:
    return str(ipaddress.ip_network(pod_cidr, strict=False).network_address)


@dataclass
class VxlanSyncer:
    """Keeps the VXLAN device and its FDB, neighbour and route entries as the Nodes say."""

    own_name: str
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sync(self, nodes: list[dict]) -> None:
        own = own_node(nodes, self.own_name)
        if own is None:
            log.warning("node %s has no InternalIP and podCIDR yet: no vxlan device",
                        self.own_name)
            return
        wanted = wanted_routes(nodes, self.own_name)     # podCIDR -> remote node IP
        with self.lock, IPRoute() as ipr:
            try:
                index = self._device(ipr, *own)
                self._fdb(ipr, index, {vtep_mac(ip): ip for ip in wanted.values()})
                self._neighbours(ipr, index,
                                 {vtep_ip(c): vtep_mac(ip) for c, ip in wanted.items()})
                self._routes(ipr, index, wanted)
            except NetlinkError as e:     # the daemon logs OSError and retries at the next sync
                raise OSError(e.code, f"vxlan: {e}") from e

    @staticmethod
    def _device(ipr, local: str, own_cidr: str) -> int:
        """The device's index, made (again) when missing or not for this node."""
        mac = vtep_mac(local)
        found = ipr.link_lookup(ifname=DEVICE)
        if found:
            link = ipr.get_links(found[0])[0]
            data = (link.get("IFLA_LINKINFO") or {}).get("IFLA_INFO_DATA") or {}
            if (data.get("IFLA_VXLAN_ID"), data.get("IFLA_VXLAN_LOCAL"),
                    data.get("IFLA_VXLAN_PORT"), link.get("address")) != (VNI, local, PORT, mac):
                log.info("vxlan device %s is not for %s: made again", DEVICE, local)
                ipr.link("del", index=found[0])
                found = []
        if not found:
            underlay = [a["index"] for a in ipr.get_addr(family=socket.AF_INET, address=local)]
            if not underlay:
                raise OSError(f"node address {local} is on no link of this host")
            mtu = ipr.get_links(underlay[0])[0].get("IFLA_MTU") - OVERHEAD
            ipr.link("add", ifname=DEVICE, kind="vxlan", vxlan_id=VNI, vxlan_local=local,
                     vxlan_port=PORT, vxlan_learning=False, address=mac, mtu=mtu)
            found = ipr.link_lookup(ifname=DEVICE)
            log.info("vxlan device %s: VNI %d, local %s, mtu %d", DEVICE, VNI, local, mtu)
        index = found[0]
        address = vtep_ip(own_cidr)
        have = [a.get("IFA_ADDRESS") for a in ipr.get_addr(family=socket.AF_INET, index=index)]
        for other in have:
            if other != address:
                ipr.addr("del", index=index, address=other, prefixlen=32)
        if address not in have:
            ipr.addr("add", index=index, address=address, prefixlen=32)
        ipr.link("set", index=index, state="up")
        return index

    @staticmethod
    def _fdb(ipr, index: int, wanted: dict[str, str]) -> None:
        have = {e.get("NDA_LLADDR"): e.get("NDA_DST") for e in ipr.fdb("dump", ifindex=index)
                if e.get("NDA_DST")}
        for mac, dst in have.items():
            if wanted.get(mac) != dst:
                ipr.fdb("del", ifindex=index, lladdr=mac, dst=dst)
        for mac, dst in wanted.items():
            if have.get(mac) != dst:
                ipr.fdb("replace", ifindex=index, lladdr=mac, dst=dst, state=NUD_PERMANENT,
                        flags=NTF_SELF)

    @staticmethod
    def _neighbours(ipr, index: int, wanted: dict[str, str]) -> None:
        have = {n.get("NDA_DST"): n.get("NDA_LLADDR")
                for n in ipr.get_neighbours(family=socket.AF_INET, ifindex=index)}
        for ip, mac in have.items():
            if ip not in wanted:
                ipr.neigh("del", ifindex=index, dst=ip, lladdr=mac)
        for ip, mac in wanted.items():
            if have.get(ip) != mac:
                ipr.neigh("replace", ifindex=index, dst=ip, lladdr=mac, state=NUD_PERMANENT)

    @staticmethod
    def _routes(ipr, index: int, wanted: dict[str, str]) -> None:
        have = {f"{r.get('RTA_DST')}/{r['dst_len']}": r.get("RTA_GATEWAY")
                for r in ipr.get_routes(family=socket.AF_INET, oif=index)
                if r.get("RTA_GATEWAY")}
        for cidr, gateway in have.items():
            if cidr not in wanted:
                ipr.route("del", dst=cidr, gateway=gateway, oif=index)
                log.info("vxlan route %s removed", cidr)
        for cidr, node_ip in wanted.items():
            if have.get(cidr) != vtep_ip(cidr):
                ipr.route("replace", dst=cidr, gateway=vtep_ip(cidr), oif=index,
                          flags=RTNH_F_ONLINK)
                log.info("vxlan route %s via node %s added", cidr, node_ip)
