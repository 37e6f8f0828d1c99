"""The NodePort allocator, as kube-apiserver's portallocator: which ports of
--service-node-port-range are taken. Like the IP allocator, in memory and rebuilt from the
stored Services at start."""
from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

from .ipalloc import AllocationError


@dataclass
class PortAllocator:
    base: int
    size: int
    _used: set[int] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

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

    def contains(self, port: int) -> bool:
        return self.base <= port < self.base + self.size

    def allocate(self, port: int) -> None:
        if not self.contains(port):
            raise AllocationError(f"provided port is not in the valid range. The range of "
                                  f"valid ports is {self}")
        with self._lock:
            if port in self._used:
                raise AllocationError("provided port is already allocated")
            self._used.add(port)

    def allocate_next(self) -> int:
        """A random free port, preferring the upper part of the range (the lower part is kept
        for ports users ask for, as kube's static subrange)."""
        static = min(max(16, self.size // 32), 128) if self.size > 16 else 0
        end = self.base + self.size - 1
        with self._lock:
            for start, stop in ((self.base + static, end), (self.base, self.base + static - 1)):
                if stop < start or all(p in self._used for p in range(start, stop + 1)):
                    continue
                pick = random.randint(start, stop)
                while pick in self._used:
                    pick = pick + 1 if pick < stop else start
                self._used.add(pick)
                return pick
        raise AllocationError("range is full")

    def mark(self, port: int) -> None:
        if self.contains(port):
            with self._lock:
                self._used.add(port)

    def release(self, port: int) -> None:
        with self._lock:
            self._used.discard(port)
