"""The ClusterIP allocator: which addresses of the service range are taken, as kube-apiserver's
ipallocator bitmap. It lives in memory and is rebuilt from the stored Services at start (the
Services are the record, so a restart never hands out an address twice); the service store
reserves before it writes and gives back when the write does not happen."""
from __future__ import annotations

import ipaddress
import random
import threading
from dataclasses import dataclass, field


class AllocationError(Exception):
    """Why an address or port cannot be had, in kube's words."""


@dataclass
class IPAllocator:
    cidr: ipaddress.IPv4Network | ipaddress.IPv6Network
    _used: set[int] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

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

    def _bounds(self) -> tuple[int, int]:
        """First and last offset that may be handed out: the network address, and for IPv4 the
        broadcast address, are never used; of an IPv6 range, the first 2^16, as in kube."""
        if self.cidr.version == 4:
            return 1, self.cidr.num_addresses - 2
        return 1, min(self.cidr.num_addresses - 1, 1 << 16)

    def first(self) -> str:
        """The address the `kubernetes` Service takes."""
        return str(self.cidr.network_address + 1)

    def contains(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        lo, hi = self._bounds()
        return addr.version == self.cidr.version and addr in self.cidr and \
            lo <= int(addr) - int(self.cidr.network_address) <= hi

    def allocate(self, ip: str) -> None:
        if not self.contains(ip):
            raise AllocationError(f"failed to allocate IP {ip}: provided IP is not in the valid "
                                  f"range. The range of valid IPs is {self.cidr}")
        offset = int(ipaddress.ip_address(ip)) - int(self.cidr.network_address)
        with self._lock:
            if offset in self._used:
                raise AllocationError(f"failed to allocate IP {ip}: provided IP is already "
                                      "allocated")
            self._used.add(offset)

    def allocate_next(self) -> str:
        """A random free address, preferring the upper part of the range: the lower part is
        kept for addresses users ask for, as kube's static subrange (KEP-3070)."""
        lo, hi = self._bounds()
        size = hi - lo + 1
        static = min(max(16, size // 16), 256) if size > 16 else 0
        with self._lock:
            for start, end in ((lo + static, hi), (lo, lo + static - 1)):
                free = end - start + 1 - sum(1 for u in self._used if start <= u <= end)
                if free <= 0:
                    continue
                pick = random.randrange(start, end + 1)
                while pick in self._used:
                    pick = pick + 1 if pick < end else start
                self._used.add(pick)
                return str(self.cidr.network_address + pick)
        raise AllocationError("failed to allocate a serviceIP: range is full")

    def mark(self, ip: str) -> None:
        """Takes an address a stored Service holds (rebuilding at start); out of range: ignored,
        as a range that changed leaves old Services their addresses."""
        if self.contains(ip):
            with self._lock:
                self._used.add(int(ipaddress.ip_address(ip)) - int(self.cidr.network_address))

    def release(self, ip: str) -> None:
        if self.contains(ip):
            with self._lock:
                self._used.discard(int(ipaddress.ip_address(ip)) -
                                   int(self.cidr.network_address))
