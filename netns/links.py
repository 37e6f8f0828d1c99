"""Links: look up, create (bridge, veth pair with one end in another netns), set up/down, MTU,
master, delete. Every function takes the RtnlSocket of the namespace it acts on."""
from __future__ import annotations

import errno
import os

from .rtnl import NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, RtnlSocket
from pyroute2.netlink.rtnl import RTM_DELLINK, RTM_GETLINK, RTM_NEWLINK, RTM_SETLINK
from pyroute2.netlink.rtnl.ifinfmsg import IFF_UP, ifinfmsg

IFNAMSIZ = 16


class Link:
    """What callers need to know of a link."""

    __slots__ = ("index", "name", "mac", "mtu", "master", "up", "kind", "created")

    def __init__(self, msg) -> None:
        self.index: int = msg["index"]
        self.name: str = msg.get_attr("IFLA_IFNAME")
        self.mac: str = msg.get_attr("IFLA_ADDRESS") or ""
        self.mtu: int = msg.get_attr("IFLA_MTU") or 0
        self.master: int = msg.get_attr("IFLA_MASTER") or 0
        self.up: bool = bool(msg["flags"] & IFF_UP)
        info = msg.get_attr("IFLA_LINKINFO")
        self.kind: str = (info.get_attr("IFLA_INFO_KIND") if info else None) or ""
        self.created = False

    def __repr__(self) -> str:
        return f"Link({self.index}, {self.name!r}, kind={self.kind!r}, master={self.master})"


def check_name(name: str) -> None:
    """Raises ValueError naming the problem if Linux would refuse `name` as a link name."""
    if not name or len(name) >= IFNAMSIZ or name in (".", "..") or any(
            c in name for c in "/: \t\n"):
        raise ValueError(f"invalid link name {name!r} (1-15 chars, no '/', ':' or spaces)")


def _get(rtnl: RtnlSocket, msg) -> Link | None:
    try:
        (reply,) = rtnl.request(msg, RTM_GETLINK, flags=0)
    except OSError as exc:
        if exc.errno in (errno.ENODEV, errno.ENOENT):
            return None
        raise
    return Link(reply)


def get_link(rtnl: RtnlSocket, name: str) -> Link | None:
    msg = ifinfmsg()
    msg["attrs"] = [("IFLA_IFNAME", name)]
    return _get(rtnl, msg)


def get_link_by_index(rtnl: RtnlSocket, index: int) -> Link | None:
    msg = ifinfmsg()
    msg["index"] = index
    return _get(rtnl, msg)


def list_links(rtnl: RtnlSocket) -> list[Link]:
    return [Link(m) for m in rtnl.request(ifinfmsg(), RTM_GETLINK, flags=NLM_F_DUMP)]


def ports_of(rtnl: RtnlSocket, bridge_index: int) -> list[Link]:
    return [link for link in list_links(rtnl) if link.master == bridge_index]


def _set(rtnl: RtnlSocket, index: int, attrs=(), flags: int = 0, change: int = 0) -> None:
    msg = ifinfmsg()
    msg["index"] = index
    msg["flags"] = flags
    msg["change"] = change
    msg["attrs"] = list(attrs)
    rtnl.request(msg, RTM_SETLINK)


def set_up(rtnl: RtnlSocket, index: int) -> None:
    _set(rtnl, index, flags=IFF_UP, change=IFF_UP)


def set_down(rtnl: RtnlSocket, index: int) -> None:
    _set(rtnl, index, flags=0, change=IFF_UP)


def set_mtu(rtnl: RtnlSocket, index: int, mtu: int) -> None:
    _set(rtnl, index, [("IFLA_MTU", mtu)])


def set_master(rtnl: RtnlSocket, index: int, master_index: int) -> None:
    _set(rtnl, index, [("IFLA_MASTER", master_index)])


def set_promisc(rtnl: RtnlSocket, index: int, on: bool) -> None:
    iff_promisc = 0x100
    _set(rtnl, index, flags=iff_promisc if on else 0, change=iff_promisc)


def delete_link(rtnl: RtnlSocket, index: int) -> bool:
    """Deletes the link; False if it was already gone."""
    msg = ifinfmsg()
    msg["index"] = index
    try:
        rtnl.request(msg, RTM_DELLINK)
    except OSError as exc:
        if exc.errno in (errno.ENODEV, errno.ENOENT):
            return False
        raise
    return True


def create_bridge(rtnl: RtnlSocket, name: str, mtu: int = 0) -> Link:
    """Creates the bridge, or returns it if it exists; ValueError if `name` is another kind.
    The returned Link's `created` tells whether this call made it."""
    check_name(name)
    attrs = [("IFLA_IFNAME", name), ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "bridge")]})]
    if mtu:
        attrs.append(("IFLA_MTU", mtu))
    msg = ifinfmsg()
    msg["attrs"] = attrs
    created = True
    try:
        rtnl.request(msg, RTM_NEWLINK, flags=NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)
    except FileExistsError:
        created = False
    link = get_link(rtnl, name)
    if link is None:  # deleted by someone else right after we looked
        raise OSError(errno.ENODEV, f"bridge {name} vanished")
    if link.kind != "bridge":
        raise ValueError(f"link {name!r} exists and is a {link.kind or 'device'}, not a bridge")
    link.created = created
    return link


def create_veth(rtnl: RtnlSocket, name: str, peer_name: str, peer_netns_fd: int | None = None,
                mtu: int = 0) -> None:
    """Creates the veth pair `name` <-> `peer_name`; with `peer_netns_fd` the peer is born inside
    that namespace under its final name, so no half-moved or temporarily-named link can be left
    behind. FileExistsError if either name is taken on its side."""
    check_name(name)
    check_name(peer_name)
    peer = [("IFLA_IFNAME", peer_name)]
    if mtu:
        peer.append(("IFLA_MTU", mtu))
    if peer_netns_fd is not None:
        peer.append(("IFLA_NET_NS_FD", peer_netns_fd))
    attrs = [("IFLA_IFNAME", name),
             ("IFLA_LINKINFO", {"attrs": [
                 ("IFLA_INFO_KIND", "veth"),
                 ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", {"attrs": peer})]})]})]
    if mtu:
        attrs.append(("IFLA_MTU", mtu))
    msg = ifinfmsg()
    msg["attrs"] = attrs
    rtnl.request(msg, RTM_NEWLINK, flags=NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)


def move_to_netns(rtnl: RtnlSocket, index: int, netns_fd: int, new_name: str = "") -> None:
    """Moves a link into another netns, renaming it there in the same request if asked."""
    attrs = [("IFLA_NET_NS_FD", netns_fd)]
    if new_name:
        check_name(new_name)
        attrs.append(("IFLA_IFNAME", new_name))
    _set(rtnl, index, attrs)


def random_veth_name(prefix: str = "veth") -> str:
    return prefix + os.urandom(4).hex()
