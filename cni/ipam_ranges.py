"""host-local's address ranges: parsing and checking a range set, and walking its free
candidates round-robin from the last address handed out (the reference plugin's order)."""
from __future__ import annotations

import ipaddress

from .errors import invalid_config


class Range:
    """One contiguous range inside a subnet; the gateway is never handed out."""

    __slots__ = ("subnet", "start", "end", "gateway")

    def __init__(self, spec: dict, where: str) -> None:
        if not isinstance(spec, dict) or not isinstance(spec.get("subnet"), str):
            raise invalid_config(f"{where}.subnet: missing or not a string")
        try:
            self.subnet = ipaddress.ip_network(spec["subnet"], strict=False)
        except ValueError as exc:
            raise invalid_config(f"{where}.subnet: {exc}") from None
        if self.subnet.network_address != ipaddress.ip_interface(spec["subnet"]).ip:
            raise invalid_config(f"{where}.subnet: network {spec['subnet']} has host bits set",
                                 f"use {self.subnet}")
        if self.subnet.prefixlen > self.subnet.max_prefixlen - 2:
            raise invalid_config(f"{where}.subnet: network {self.subnet} too small to allocate "
                                 "from")
        first = self.subnet.network_address + 1
        last = self.subnet.broadcast_address - (1 if self.subnet.version == 4 else 0)
        self.gateway = self._address(spec, "gateway", where) or first
        self.start = self._address(spec, "rangeStart", where) or first
        self.end = self._address(spec, "rangeEnd", where) or last
        if self.start > self.end:
            raise invalid_config(f"{where}: rangeStart {self.start} is after rangeEnd {self.end}")

    def _address(self, spec: dict, key: str, where: str):
        value = spec.get(key)
        if value in (None, ""):
            return None
        try:
            address = ipaddress.ip_address(value)
        except (ValueError, TypeError):
            raise invalid_config(f"{where}.{key}: {value!r} is not an IP address") from None
        if address not in self.subnet:
            raise invalid_config(f"{where}.{key}: {address} not in network {self.subnet}")
        return address

    def contains(self, address) -> bool:
        return address.version == self.subnet.version and self.start <= address <= self.end

    def overlaps(self, other: "Range") -> bool:
        return (self.subnet.version == other.subnet.version and self.start <= other.end
                and other.start <= self.end)

    def __str__(self) -> str:
        return f"{self.start}-{self.end}"


class RangeSet:
    """The ranges that one allocation picks one address from (one family)."""

    __slots__ = ("ranges",)

    def __init__(self, specs, where: str) -> None:
        if not isinstance(specs, list) or not specs:
            raise invalid_config(f"{where}: must be a non-empty list of ranges")
        self.ranges = [Range(s, f"{where}[{i}]") for i, s in enumerate(specs)]
        if len({r.subnet.version for r in self.ranges}) > 1:
            raise invalid_config(f"{where}: mixes IPv4 and IPv6 ranges")
        for i, a in enumerate(self.ranges):
            for b in self.ranges[i + 1:]:
                if a.overlaps(b):
                    raise invalid_config(f"{where}: ranges {a} and {b} overlap")

    def range_for(self, address) -> Range | None:
        return next((r for r in self.ranges if r.contains(address)), None)

    def overlaps(self, other: "RangeSet") -> bool:
        return any(a.overlaps(b) for a in self.ranges for b in other.ranges)

    def capacity(self) -> int:
        return sum(int(r.end) - int(r.start) + 1 - (1 if r.contains(r.gateway) else 0)
                   for r in self.ranges)

    def candidates(self, last_reserved):
        """(address, range) pairs to try, starting after `last_reserved` when it is in this set
        and wrapping around once."""
        start_range, start = 0, self.ranges[0].start
        if last_reserved is not None:
            for i, r in enumerate(self.ranges):
                if r.contains(last_reserved):
                    start_range, start = i, last_reserved + 1
                    if start > r.end:
                        start_range = (i + 1) % len(self.ranges)
                        start = self.ranges[start_range].start
                    break
        order = self.ranges[start_range:] + self.ranges[:start_range]
        for i, r in enumerate(order):
            address = start if i == 0 else r.start
            while address <= r.end:
                if address != r.gateway:
                    yield address, r
                address += 1
        # The part of the first range before the starting point, tried last.
        first = order[0]
        address = first.start
        while address < start:
            if address != first.gateway:
                yield address, first
            address += 1

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.ranges)
