"""IP addresses of links: add, delete, list. Addresses are 'ip/prefix' strings."""
from __future__ import annotations

import errno
import struct
from _socket import AF_INET, AF_INET6, AF_UNSPEC

from . import netlink as nl
from .netlink import RTM_DELADDR, RTM_GETADDR, RTM_NEWADDR
from .rtnl import NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, RtnlSocket

# struct ifaddrmsg: family, prefixlen, flags, scope, index
_IFADDR = struct.Struct("=BBBBI")
IFA_ADDRESS = 1
IFA_LOCAL = 2


def _msg(index: int, cidr: str) -> bytes:
    ip, _, prefix = cidr.partition("/")
    family = nl.family_of(ip)
    prefixlen = int(prefix) if prefix else (128 if family == AF_INET6 else 32)
    body = _IFADDR.pack(family, prefixlen, 0, 0, index)
    if family == AF_INET:
        body += nl.ip(IFA_LOCAL, ip)
    return body + nl.ip(IFA_ADDRESS, ip)


def add_message(index: int, cidr: str) -> tuple[int, bytes, int]:
    """The request of add_address, for a batch."""
    return RTM_NEWADDR, _msg(index, cidr), NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL


def add_address(rtnl: RtnlSocket, index: int, cidr: str, exist_ok: bool = False) -> None:
    """Adds `cidr` (e.g. '198.18.0.5/24') to link `index`."""
    try:
        rtnl.request(*add_message(index, cidr))
    except FileExistsError:
        if not exist_ok:
            raise


def delete_address(rtnl: RtnlSocket, index: int, cidr: str) -> bool:
    """Deletes the address; False if it was not there."""
    try:
        rtnl.request(RTM_DELADDR, _msg(index, cidr))
    except OSError as exc:
        if exc.errno in (errno.EADDRNOTAVAIL, errno.ENODEV, errno.ENOENT):
            return False
        raise
    return True


def list_message(index: int = 0, family: int = AF_UNSPEC) -> tuple[int, bytes, int]:
    """The request of list_addresses, for a batch: its outcome goes through addresses_of."""
    return RTM_GETADDR, _IFADDR.pack(family, 0, 0, 0, index), NLM_F_DUMP


def addresses_of(replies: list[bytes], index: int = 0) -> list[str]:
    out = []
    for body in replies:
        _family, prefixlen, _flags, _scope, link = _IFADDR.unpack_from(body)
        if index and link != index:
            continue
        attrs = nl.parse(body, _IFADDR.size)
        out.append(f"{nl.get_ip(attrs, IFA_LOCAL) or nl.get_ip(attrs, IFA_ADDRESS)}/{prefixlen}")
    return out


def list_addresses(rtnl: RtnlSocket, index: int = 0, family: int = AF_UNSPEC) -> list[str]:
    """Addresses as 'ip/prefix', of link `index` (or of all links when 0)."""
    return addresses_of(rtnl.request(*list_message(index, family)), index)
