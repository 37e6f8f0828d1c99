"""Routes: add, delete, list, and the kernel's route lookup for one destination."""
from __future__ import annotations

import errno
import socket

from .rtnl import NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, RtnlSocket
from pyroute2.netlink.rtnl import RTM_DELROUTE, RTM_GETROUTE, RTM_NEWROUTE
from pyroute2.netlink.rtnl.rtmsg import rtmsg

RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253
RTN_UNICAST = 1


def _split(cidr: str) -> tuple[str, int, int]:
    ip, _, prefix = cidr.partition("/")
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    full = 128 if family == socket.AF_INET6 else 32
    return ip, int(prefix) if prefix else full, family


def _msg(dst: str, gateway: str = "", oif: int = 0, table: int = 0, priority: int = 0,
         scope: int | None = None, mtu: int = 0, advmss: int = 0):
    ip, prefix, family = _split(dst)
    msg = rtmsg()
    msg["family"] = family
    msg["dst_len"] = prefix
    msg["table"] = table if 0 < table < 256 else RT_TABLE_MAIN
    msg["proto"] = RTPROT_BOOT
    msg["type"] = RTN_UNICAST
    msg["scope"] = scope if scope is not None else (RT_SCOPE_UNIVERSE if gateway else RT_SCOPE_LINK)
    attrs = []
    if prefix:
        attrs.append(("RTA_DST", ip))
    if gateway:
        attrs.append(("RTA_GATEWAY", gateway))
    if oif:
        attrs.append(("RTA_OIF", oif))
    if priority:
        attrs.append(("RTA_PRIORITY", priority))
    if table >= 256:
        attrs.append(("RTA_TABLE", table))
    metrics = [(name, value) for name, value in (("RTAX_MTU", mtu), ("RTAX_ADVMSS", advmss))
               if value]
    if metrics:
        attrs.append(("RTA_METRICS", {"attrs": metrics}))
    msg["attrs"] = attrs
    return msg


def add_route(rtnl: RtnlSocket, dst: str, gateway: str = "", oif: int = 0, table: int = 0,
              priority: int = 0, scope: int | None = None, mtu: int = 0, advmss: int = 0,
              exist_ok: bool = False) -> None:
    """Adds a route to `dst` ('0.0.0.0/0', '198.18.0.0/24', ...), via `gateway` and/or out of
    link `oif`."""
    msg = _msg(dst, gateway, oif, table, priority, scope, mtu, advmss)
    try:
        rtnl.request(msg, RTM_NEWROUTE, flags=NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)
    except FileExistsError:
        if not exist_ok:
            raise


def delete_route(rtnl: RtnlSocket, dst: str, gateway: str = "", oif: int = 0,
                 table: int = 0) -> bool:
    try:
        rtnl.request(_msg(dst, gateway, oif, table), RTM_DELROUTE)
    except OSError as exc:
        if exc.errno in (errno.ESRCH, errno.ENOENT):
            return False
        raise
    return True


class Route:
    __slots__ = ("dst", "gateway", "oif", "table")

    def __init__(self, msg) -> None:
        family_any = "::" if msg["family"] == socket.AF_INET6 else "0.0.0.0"
        self.dst = f"{msg.get_attr('RTA_DST') or family_any}/{msg['dst_len']}"
        self.gateway: str = msg.get_attr("RTA_GATEWAY") or ""
        self.oif: int = msg.get_attr("RTA_OIF") or 0
        self.table: int = msg.get_attr("RTA_TABLE") or msg["table"]

    def __repr__(self) -> str:
        return f"Route({self.dst} via {self.gateway or '-'} oif {self.oif})"


def list_routes(rtnl: RtnlSocket, family: int = socket.AF_INET, table: int = RT_TABLE_MAIN
                ) -> list[Route]:
    msg = rtmsg()
    msg["family"] = family
    routes = [Route(m) for m in rtnl.request(msg, RTM_GETROUTE, flags=NLM_F_DUMP)]
    return [r for r in routes if not table or r.table == table]


def route_get(rtnl: RtnlSocket, ip: str) -> Route | None:
    """The route the kernel would use to reach `ip` (like `ip route get`), None if unreachable."""
    address, prefix, family = _split(ip)
    msg = rtmsg()
    msg["family"] = family
    msg["dst_len"] = prefix
    msg["attrs"] = [("RTA_DST", address)]
    try:
        replies = rtnl.request(msg, RTM_GETROUTE, flags=0)
    except OSError as exc:
        if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return None
        raise
    return Route(replies[0]) if replies else None
