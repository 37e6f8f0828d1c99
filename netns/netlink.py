"""The rtnetlink wire format (rtnetlink(7); <linux/rtnetlink.h>, <linux/if_link.h>,
<linux/if_addr.h>): attributes as type-length-value records, packed and read with struct.

Our own rather than pyroute2's message classes: a CNI plugin is a process started once per pod
and command, and importing pyroute2's rtnetlink classes (with the logging, typing and
multiprocessing they pull in) cost more than all the work the plugin does. links.py,
addresses.py and routes.py pack their fixed message headers themselves and build their
attributes from the helpers here.
"""
from __future__ import annotations

import struct
from _socket import AF_INET, AF_INET6, inet_ntop, inet_pton  # `socket` would import enum

# Message types (<linux/rtnetlink.h>).
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_SETLINK = 19
RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_GETADDR = 22
RTM_NEWROUTE = 24
RTM_DELROUTE = 25
RTM_GETROUTE = 26

NLA_F_NESTED = 1 << 15
_NLA_TYPE_MASK = ~(NLA_F_NESTED | 1 << 14)  # without NESTED and NET_BYTEORDER
_NLA = struct.Struct("=HH")
_U32 = struct.Struct("=I")


def _pad(length: int) -> int:
    return (length + 3) & ~3


def attr(kind: int, payload: bytes) -> bytes:
    """One attribute, padded to the 4-byte boundary the next one starts on."""
    length = _NLA.size + len(payload)
    return _NLA.pack(length, kind) + payload + b"\0" * (_pad(length) - length)


def nested(kind: int, *attrs: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(attrs))


def u32(kind: int, value: int) -> bytes:
    return attr(kind, _U32.pack(value))


def string(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def ip(kind: int, address: str) -> bytes:
    return attr(kind, inet_pton(family_of(address), address))


def family_of(address: str) -> int:
    return AF_INET6 if ":" in address else AF_INET


def parse(data: bytes, offset: int = 0) -> dict[int, bytes]:
    """The attributes from `offset` to the end of `data`, by type (the first of each type)."""
    out: dict[int, bytes] = {}
    end = len(data)
    while offset + _NLA.size <= end:
        length, kind = _NLA.unpack_from(data, offset)
        if length < _NLA.size:
            break
        out.setdefault(kind & _NLA_TYPE_MASK, data[offset + _NLA.size:offset + length])
        offset += _pad(length)
    return out


def get_u32(attrs: dict[int, bytes], kind: int) -> int:
    value = attrs.get(kind)
    return _U32.unpack_from(value)[0] if value else 0


def get_string(attrs: dict[int, bytes], kind: int) -> str:
    value = attrs.get(kind)
    return value.split(b"\0", 1)[0].decode() if value is not None else ""


def get_ip(attrs: dict[int, bytes], kind: int) -> str:
    value = attrs.get(kind)
    if not value:
        return ""
    return inet_ntop(AF_INET if len(value) == 4 else AF_INET6, value)


def get_mac(attrs: dict[int, bytes], kind: int) -> str:
    value = attrs.get(kind)
    return ":".join(f"{b:02x}" for b in value) if value else ""
