"""IP addresses of links: add, delete, list. Addresses are 'ip/prefix' strings."""
from __future__ import annotations

import errno
import socket

from .rtnl import NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, RtnlSocket
from pyroute2.netlink.rtnl import RTM_DELADDR, RTM_GETADDR, RTM_NEWADDR
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg


def _family(ip: str) -> int:
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def _msg(index: int, cidr: str):
    ip, _, prefix = cidr.partition("/")
    family = _family(ip)
    msg = ifaddrmsg()
    msg["family"] = family
    msg["prefixlen"] = int(prefix) if prefix else (128 if family == socket.AF_INET6 else 32)
    msg["index"] = index
    msg["attrs"] = [("IFA_LOCAL", ip), ("IFA_ADDRESS", ip)] if family == socket.AF_INET else [
        ("IFA_ADDRESS", ip)]
    return msg


def add_address(rtnl: RtnlSocket, index: int, cidr: str, exist_ok: bool = False) -> None:
    """Adds `cidr` (e.g. '198.18.0.5/24') to link `index`."""
    try:
        rtnl.request(_msg(index, cidr), RTM_NEWADDR, flags=NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)
    except FileExistsError:
        if not exist_ok:
            raise


def delete_address(rtnl: RtnlSocket, index: int, cidr: str) -> bool:
    """Deletes the address; False if it was not there."""
    try:
        rtnl.request(_msg(index, cidr), RTM_DELADDR)
    except OSError as exc:
        if exc.errno in (errno.EADDRNOTAVAIL, errno.ENODEV, errno.ENOENT):
            return False
        raise
    return True


def list_addresses(rtnl: RtnlSocket, index: int = 0, family: int = socket.AF_UNSPEC) -> list[str]:
    """Addresses as 'ip/prefix', of link `index` (or of all links when 0)."""
    msg = ifaddrmsg()
    msg["family"] = family
    msg["index"] = index
    out = []
    for reply in rtnl.request(msg, RTM_GETADDR, flags=NLM_F_DUMP):
        if index and reply["index"] != index:
            continue
        ip = reply.get_attr("IFA_LOCAL") or reply.get_attr("IFA_ADDRESS")
        out.append(f"{ip}/{reply['prefixlen']}")
    return out
