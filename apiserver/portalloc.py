"""The NodePort range, as kube-apiserver's portallocator: which ports of
--service-node-port-range may be taken and which one to hand out next. Like the IP range, its
taken offsets (from the first port) are kept in storage at kube's key."""
from __future__ import annotations

from dataclasses import dataclass

from .ipalloc import pick_free
from .rangealloc import AllocationError


@dataclass(frozen=True)
class PortAllocator:
    base: int
    size: int
    key = "/registry/ranges/servicenodeports"

    @classmethod
    def parse(cls, text: str) -> "PortAllocator":
        """"30000-32767" (or one port); ValueError naming the flag otherwise."""
        lo, sep, hi = text.partition("-")
        try:
            first, last = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise ValueError(f"--service-node-port-range: invalid port range {text!r}") from None
        if not 0 < first <= last <= 65535:
            raise ValueError(f"--service-node-port-range: invalid port range {text!r}")
        return cls(first, last - first + 1)

    def __str__(self) -> str:
        return f"{self.base}-{self.base + self.size - 1}"

    def offset(self, port: int) -> int | None:
        return port - self.base if self.base <= port < self.base + self.size else None

    def allocate(self, port: int, taken: set[int]) -> None:
        offset = self.offset(port)
        if offset is None:
            raise AllocationError(f"provided port is not in the valid range. The range of "
                                  f"valid ports is {self}")
        if offset in taken:
            raise AllocationError("provided port is already allocated")
        taken.add(offset)

    def allocate_next(self, taken: set[int]) -> int:
        """A random free port, preferring the upper part of the range (the lower part is kept
        for ports users ask for, as kube's static subrange)."""
        static = min(max(16, self.size // 32), 128) if self.size > 16 else 0
        return self.base + pick_free(taken, ((static, self.size - 1), (0, static - 1)),
                                     "range is full")
