"""Links: look up, create (bridge, veth pair with one end in another netns), set up/down, MTU,
master, delete. Every function takes the RtnlSocket of the namespace it acts on."""
from __future__ import annotations

import errno
import os
import struct
from _socket import AF_INET

from . import netlink as nl
from .netlink import RTM_DELLINK, RTM_GETLINK, RTM_NEWLINK, RTM_SETLINK
from .rtnl import NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, RtnlSocket, raise_first

IFNAMSIZ = 16
IFF_UP = 0x1
IFF_PROMISC = 0x100
# struct ifinfomsg: family, (pad), type, index, flags, change
_IFINFO = struct.Struct("=BxHiII")
# Attributes (<linux/if_link.h>, <linux/veth.h>).
IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_MASTER = 10
IFLA_LINKINFO = 18
IFLA_AF_SPEC = 26
IFLA_NET_NS_FD = 28
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
VETH_INFO_PEER = 1
IFLA_INET_CONF = 1
IPV4_DEVCONF_ARP_NOTIFY = 22    # <linux/ip.h>


def _ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return _IFINFO.pack(0, 0, index, flags, change)


class Link:
    """What callers need to know of a link."""

    __slots__ = ("index", "name", "mac", "mtu", "master", "up", "kind", "created")

    def __init__(self, body: bytes) -> None:
        _family, _type, self.index, flags, _change = _IFINFO.unpack_from(body)
        attrs = nl.parse(body, _IFINFO.size)
        self.name: str = nl.get_string(attrs, IFLA_IFNAME)
        self.mac: str = nl.get_mac(attrs, IFLA_ADDRESS)
        self.mtu: int = nl.get_u32(attrs, IFLA_MTU)
        self.master: int = nl.get_u32(attrs, IFLA_MASTER)
        self.up: bool = bool(flags & IFF_UP)
        info = attrs.get(IFLA_LINKINFO)
        self.kind: str = nl.get_string(nl.parse(info), IFLA_INFO_KIND) if info else ""
        self.created = False

    def __repr__(self) -> str:
        return f"Link({self.index}, {self.name!r}, kind={self.kind!r}, master={self.master})"


def check_name(name: str) -> None:
    """Raises ValueError naming the problem if Linux would refuse `name` as a link name."""
    if not name or len(name) >= IFNAMSIZ or name in (".", "..") or any(
            c in name for c in "/: \t\n"):
        raise ValueError(f"invalid link name {name!r} (1-15 chars, no '/', ':' or spaces)")


def _get(rtnl: RtnlSocket, body: bytes) -> Link | None:
    return link_of(rtnl.batch([(RTM_GETLINK, body, 0)])[0])


def get_message(name: str) -> tuple[int, bytes, int]:
    """The request of get_link(name), for a batch: its outcome goes through link_of."""
    return RTM_GETLINK, _ifinfo() + nl.string(IFLA_IFNAME, name), 0


def link_of(outcome: list[bytes] | OSError) -> Link | None:
    """The Link a GETLINK's outcome in a batch describes; None if there is no such link."""
    if isinstance(outcome, OSError):
        if outcome.errno in (errno.ENODEV, errno.ENOENT):
            return None
        raise outcome
    return Link(outcome[0])


def get_link(rtnl: RtnlSocket, name: str) -> Link | None:
    return link_of(rtnl.batch([get_message(name)])[0])


def get_link_by_index(rtnl: RtnlSocket, index: int) -> Link | None:
    return _get(rtnl, _ifinfo(index))


def list_links(rtnl: RtnlSocket) -> list[Link]:
    return [Link(body) for body in rtnl.request(RTM_GETLINK, _ifinfo(), flags=NLM_F_DUMP)]


def ports_of(rtnl: RtnlSocket, bridge_index: int) -> list[Link]:
    # The kernel filters the dump by IFLA_MASTER, except for index 0: hence the check here.
    body = _ifinfo() + nl.u32(IFLA_MASTER, bridge_index)
    return [link for link in map(Link, rtnl.request(RTM_GETLINK, body, flags=NLM_F_DUMP))
            if link.master == bridge_index]


def set_message(index: int, attrs: bytes = b"", flags: int = 0,
                change: int = 0) -> tuple[int, bytes, int]:
    """An RTM_SETLINK request for a batch: these attributes, the `change` bits of the flags."""
    return RTM_SETLINK, _ifinfo(index, flags, change) + attrs, NLM_F_ACK


def _set(rtnl: RtnlSocket, index: int, attrs: bytes = b"", flags: int = 0,
         change: int = 0) -> None:
    raise_first(rtnl.batch([set_message(index, attrs, flags, change)]))


def ipv4_conf(values: dict[int, int]) -> bytes:
    """The attribute of a SETLINK that sets the link's IPv4 sysctls (net.ipv4.conf.IF.*, by
    their IPV4_DEVCONF_* number): no thread sent into the link's namespace to write /proc/sys."""
    return nl.nested(IFLA_AF_SPEC, nl.nested(AF_INET, nl.nested(
        IFLA_INET_CONF, *(nl.u32(key, value) for key, value in values.items()))))


def set_up(rtnl: RtnlSocket, index: int) -> None:
    _set(rtnl, index, flags=IFF_UP, change=IFF_UP)


def set_down(rtnl: RtnlSocket, index: int) -> None:
    _set(rtnl, index, flags=0, change=IFF_UP)


def set_mtu(rtnl: RtnlSocket, index: int, mtu: int) -> None:
    _set(rtnl, index, nl.u32(IFLA_MTU, mtu))


def set_master(rtnl: RtnlSocket, index: int, master_index: int) -> None:
    _set(rtnl, index, nl.u32(IFLA_MASTER, master_index))


def set_promisc(rtnl: RtnlSocket, index: int, on: bool) -> None:
    _set(rtnl, index, flags=IFF_PROMISC if on else 0, change=IFF_PROMISC)


def delete_link(rtnl: RtnlSocket, index: int) -> bool:
    """Deletes the link; False if it was already gone."""
    try:
        rtnl.request(RTM_DELLINK, _ifinfo(index))
    except OSError as exc:
        if exc.errno in (errno.ENODEV, errno.ENOENT):
            return False
        raise
    return True


def create_bridge(rtnl: RtnlSocket, name: str, mtu: int = 0) -> Link:
    """Creates the bridge, or returns it if it exists; ValueError if `name` is another kind.
    The returned Link's `created` tells whether this call made it."""
    check_name(name)
    body = _ifinfo() + nl.string(IFLA_IFNAME, name) + nl.nested(
        IFLA_LINKINFO, nl.string(IFLA_INFO_KIND, "bridge"))
    if mtu:
        body += nl.u32(IFLA_MTU, mtu)
    # Made and read back in one round trip: on a node it exists but for the first pod.
    made, got = rtnl.batch([(RTM_NEWLINK, body, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL),
                            get_message(name)])
    if isinstance(made, OSError) and not isinstance(made, FileExistsError):
        raise made
    created = not isinstance(made, OSError)
    link = link_of(got)
    if link is None:  # deleted by someone else right after we looked
        raise OSError(errno.ENODEV, f"bridge {name} vanished")
    if link.kind != "bridge":
        raise ValueError(f"link {name!r} exists and is a {link.kind or 'device'}, not a bridge")
    link.created = created
    return link


def create_veth(rtnl: RtnlSocket, name: str, peer_name: str, peer_netns_fd: int | None = None,
                mtu: int = 0, master: int = 0, up: bool = False) -> Link:
    """Creates the veth pair `name` <-> `peer_name` and returns the `name` side; with
    `peer_netns_fd` the peer is born inside that namespace under its final name, so no
    half-moved or temporarily-named link can be left behind. `master` (a bridge's index) and
    `up` apply to the `name` side as it is made, in the same request. FileExistsError if either
    name is taken on its side."""
    check_name(name)
    check_name(peer_name)
    # The peer is described by a whole ifinfomsg of its own, then its attributes.
    peer = _ifinfo() + nl.string(IFLA_IFNAME, peer_name)
    if mtu:
        peer += nl.u32(IFLA_MTU, mtu)
    if peer_netns_fd is not None:
        peer += nl.u32(IFLA_NET_NS_FD, peer_netns_fd)
    body = _ifinfo(flags=IFF_UP if up else 0, change=IFF_UP) + nl.string(IFLA_IFNAME, name) + \
        nl.nested(IFLA_LINKINFO, nl.string(IFLA_INFO_KIND, "veth"),
                  nl.nested(IFLA_INFO_DATA, nl.nested(VETH_INFO_PEER, peer)))
    if mtu:
        body += nl.u32(IFLA_MTU, mtu)
    if master:
        body += nl.u32(IFLA_MASTER, master)
    made, got = rtnl.batch(
        [(RTM_NEWLINK, body, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL), get_message(name)])
    if isinstance(made, OSError):
        raise made
    if isinstance(got, OSError):    # made but not read back: not left behind for the caller
        rtnl.batch([(RTM_DELLINK, _ifinfo() + nl.string(IFLA_IFNAME, name), NLM_F_ACK)])
        raise got
    return Link(got[0])


def move_to_netns(rtnl: RtnlSocket, index: int, netns_fd: int, new_name: str = "") -> None:
    """Moves a link into another netns, renaming it there in the same request if asked."""
    attrs = nl.u32(IFLA_NET_NS_FD, netns_fd)
    if new_name:
        check_name(new_name)
        attrs += nl.string(IFLA_IFNAME, new_name)
    _set(rtnl, index, attrs)


def random_veth_name(prefix: str = "veth") -> str:
    return prefix + os.urandom(4).hex()
