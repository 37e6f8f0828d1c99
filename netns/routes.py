"""Routes: add, delete, list, and the kernel's route lookup for one destination."""
from __future__ import annotations

import errno
import struct
from _socket import AF_INET, AF_INET6

from . import netlink as nl
from .netlink import RTM_DELROUTE, RTM_GETROUTE, RTM_NEWROUTE
from .rtnl import NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, RtnlSocket

RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253
RTN_UNICAST = 1
# struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
_RTMSG = struct.Struct("=BBBBBBBBI")
# Attributes (<linux/rtnetlink.h>) and metrics.
RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_PRIORITY = 6
RTA_METRICS = 8
RTA_TABLE = 15
RTAX_MTU = 2
RTAX_ADVMSS = 8


def _split(cidr: str) -> tuple[str, int, int]:
    ip, _, prefix = cidr.partition("/")
    family = nl.family_of(ip)
    full = 128 if family == AF_INET6 else 32
    return ip, int(prefix) if prefix else full, family


def _msg(dst: str, gateway: str = "", oif: int = 0, table: int = 0, priority: int = 0,
         scope: int | None = None, mtu: int = 0, advmss: int = 0) -> bytes:
    ip, prefix, family = _split(dst)
    if scope is None:
        scope = RT_SCOPE_UNIVERSE if gateway else RT_SCOPE_LINK
    body = _RTMSG.pack(family, prefix, 0, 0, table if 0 < table < 256 else RT_TABLE_MAIN,
                       RTPROT_BOOT, scope, RTN_UNICAST, 0)
    if prefix:
        body += nl.ip(RTA_DST, ip)
    if gateway:
        body += nl.ip(RTA_GATEWAY, gateway)
    if oif:
        body += nl.u32(RTA_OIF, oif)
    if priority:
        body += nl.u32(RTA_PRIORITY, priority)
    if table >= 256:
        body += nl.u32(RTA_TABLE, table)
    metrics = [nl.u32(kind, value) for kind, value in ((RTAX_MTU, mtu), (RTAX_ADVMSS, advmss))
               if value]
    if metrics:
        body += nl.nested(RTA_METRICS, *metrics)
    return body


def add_route(rtnl: RtnlSocket, dst: str, gateway: str = "", oif: int = 0, table: int = 0,
              priority: int = 0, scope: int | None = None, mtu: int = 0, advmss: int = 0,
              exist_ok: bool = False) -> None:
    """Adds a route to `dst` ('0.0.0.0/0', '198.18.0.0/24', ...), via `gateway` and/or out of
    link `oif`."""
    try:
        rtnl.request(*add_message(dst, gateway, oif, table, priority, scope, mtu, advmss))
    except FileExistsError:
        if not exist_ok:
            raise


def add_message(dst: str, gateway: str = "", oif: int = 0, table: int = 0, priority: int = 0,
                scope: int | None = None, mtu: int = 0, advmss: int = 0
                ) -> tuple[int, bytes, int]:
    """The request of add_route, for a batch."""
    return (RTM_NEWROUTE, _msg(dst, gateway, oif, table, priority, scope, mtu, advmss),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)


def delete_route(rtnl: RtnlSocket, dst: str, gateway: str = "", oif: int = 0,
                 table: int = 0) -> bool:
    try:
        rtnl.request(RTM_DELROUTE, _msg(dst, gateway, oif, table))
    except OSError as exc:
        if exc.errno in (errno.ESRCH, errno.ENOENT):
            return False
        raise
    return True


class Route:
    __slots__ = ("dst", "gateway", "oif", "table")

    def __init__(self, body: bytes) -> None:
        family, dst_len, _src, _tos, table = _RTMSG.unpack_from(body)[:5]
        attrs = nl.parse(body, _RTMSG.size)
        family_any = "::" if family == AF_INET6 else "0.0.0.0"
        self.dst = f"{nl.get_ip(attrs, RTA_DST) or family_any}/{dst_len}"
        self.gateway: str = nl.get_ip(attrs, RTA_GATEWAY)
        self.oif: int = nl.get_u32(attrs, RTA_OIF)
        self.table: int = nl.get_u32(attrs, RTA_TABLE) or table

    def __repr__(self) -> str:
        return f"Route({self.dst} via {self.gateway or '-'} oif {self.oif})"


def list_routes(rtnl: RtnlSocket, family: int = AF_INET, table: int = RT_TABLE_MAIN
                ) -> list[Route]:
    body = _RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)
    routes = [Route(m) for m in rtnl.request(RTM_GETROUTE, body, flags=NLM_F_DUMP)]
    return [r for r in routes if not table or r.table == table]


def route_get(rtnl: RtnlSocket, ip: str) -> Route | None:
    """The route the kernel would use to reach `ip` (like `ip route get`), None if unreachable."""
    address, prefix, family = _split(ip)
    body = _RTMSG.pack(family, prefix, 0, 0, 0, 0, 0, 0, 0) + nl.ip(RTA_DST, address)
    try:
        replies = rtnl.request(RTM_GETROUTE, body, flags=0)
    except OSError as exc:
        if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return None
        raise
    return Route(replies[0]) if replies else None
