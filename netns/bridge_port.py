"""Bridge port settings of a link in the caller's network namespace, through rtnetlink (not
sysfs, whose /sys/class/net shows the namespace of whoever mounted /sys: a kubelet run in a
node's namespace under the host's /sys would not find its own ports there)."""
from __future__ import annotations

import struct

from . import netlink as nl
from .links import IFLA_LINKINFO, get_link
from .netlink import NLA_F_NESTED, RTM_GETLINK, RTM_SETLINK
from .rtnl import RtnlSocket

AF_BRIDGE = 7
IFLA_PROTINFO = 12
IFLA_INFO_SLAVE_DATA = 5
IFLA_BRPORT_MODE = 4            # hairpin
_IFINFO = struct.Struct("=BxHiII")


def _index(sock: RtnlSocket, ifname: str) -> int:
    link = get_link(sock, ifname)
    if link is None:
        raise FileNotFoundError(f"no link {ifname}")
    return link.index


def set_hairpin(ifname: str, on: bool) -> None:
    """Lets frames go back out of the port they came in on (a pod reaching itself through a
    host port); as `bridge link set dev IFNAME hairpin on`."""
    with RtnlSocket() as sock:
        body = _IFINFO.pack(AF_BRIDGE, 0, _index(sock, ifname), 0, 0)
        body += nl.attr(IFLA_PROTINFO | NLA_F_NESTED,
                        nl.attr(IFLA_BRPORT_MODE, bytes([1 if on else 0])))
        sock.request(RTM_SETLINK, body)


def get_hairpin(ifname: str) -> bool:
    with RtnlSocket() as sock:
        reply = sock.request(RTM_GETLINK, _IFINFO.pack(0, 0, _index(sock, ifname), 0, 0))
    info = nl.parse(nl.parse(reply[0], _IFINFO.size).get(IFLA_LINKINFO, b""))
    mode = nl.parse(info.get(IFLA_INFO_SLAVE_DATA, b"")).get(IFLA_BRPORT_MODE, b"\0")
    return mode[:1] == b"\1"
