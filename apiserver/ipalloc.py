"""The ClusterIP range, as kube-apiserver's ipallocator: which offsets of the service range an
address may take and which one to hand out next. Which are taken is a set of offsets kept in
storage (rangealloc.StoredRange, at kube's key); offsets count from the network address + 1,
as kube's bitmap does."""
from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass

from .rangealloc import AllocationError


@dataclass(frozen=True)
class IPAllocator:
    cidr: ipaddress.IPv4Network | ipaddress.IPv6Network
    key = "/registry/ranges/serviceips"

    @classmethod
    def parse(cls, cidr: str) -> "IPAllocator":
        """ValueError naming the flag for a range that cannot hold a Service."""
        try:
            net = ipaddress.ip_network(cidr, strict=True)
        except ValueError as e:
            raise ValueError(f"--service-cluster-ip-range: invalid CIDR {cidr!r}: {e}") from None
        if net.num_addresses < 4:
            raise ValueError(f"--service-cluster-ip-range: {cidr} is too small")
        return cls(net)

    def __str__(self) -> str:
        return str(self.cidr)

    def first(self) -> str:
        """The address the `kubernetes` Service takes."""
        return str(self.cidr.network_address + 1)

    def _last(self) -> int:
        """The last offset that may be handed out: for IPv4 the broadcast address is never
        used; of an IPv6 range only the first 2^16, as in kube."""
        if self.cidr.version == 4:
            return self.cidr.num_addresses - 3
        return min(self.cidr.num_addresses - 2, (1 << 16) - 1)

    def offset(self, ip: str) -> int | None:
        """ip's offset, None when it is not one the range hands out (a range that changed
        leaves old Services their addresses)."""
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None
        if addr.version != self.cidr.version or addr not in self.cidr:
            return None
        offset = int(addr) - int(self.cidr.network_address) - 1
        return offset if 0 <= offset <= self._last() else None

    def allocate(self, ip: str, taken: set[int]) -> None:
        offset = self.offset(ip)
        if offset is None:
            raise AllocationError(f"failed to allocate IP {ip}: provided IP is not in the valid "
                                  f"range. The range of valid IPs is {self.cidr}")
        if offset in taken:
            raise AllocationError(f"failed to allocate IP {ip}: provided IP is already "
                                  "allocated")
        taken.add(offset)

    def allocate_next(self, taken: set[int]) -> str:
        """A random free address, preferring the upper part of the range: the lower part is
        kept for addresses users ask for, as kube's static subrange (KEP-3070)."""
        last = self._last()
        static = min(max(16, (last + 1) // 16), 256) if last + 1 > 16 else 0
        pick = pick_free(taken, ((static, last), (0, static - 1)),
                         "failed to allocate a serviceIP: range is full")
        return str(self.cidr.network_address + 1 + pick)


def pick_free(taken: set[int], spans: tuple[tuple[int, int], ...], full: str) -> int:
    """A random free offset of the first span that has one, taken; AllocationError(full) when
    none has."""
    for start, end in spans:
        if end < start or sum(1 for t in taken if start <= t <= end) > end - start:
            continue
        pick = random.randint(start, end)
        while pick in taken:
            pick = pick + 1 if pick < end else start
        taken.add(pick)
        return pick
    raise AllocationError(full)
