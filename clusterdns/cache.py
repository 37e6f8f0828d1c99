"""The forwarder's answer cache, as CoreDNS's cache plugin keeps one: an answer lives as long as
its smallest TTL (capped at an hour), a denial (NXDOMAIN, or NODATA) as long as its SOA allows
(RFC 2308: min of the SOA's TTL and minimum, capped at 30 minutes); an answer taken from the
cache carries the TTLs it has left. Failures and truncated answers are not kept."""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

MAX_TTL = 3600
MAX_NEGATIVE_TTL = 1800
CAPACITY = 10000

Key = tuple[str, int, int, bool]   # lower-cased name, type, class, DNSSEC OK


@dataclass(frozen=True)
class Result:
    """An upstream's answer without its header: what a response to any client is built from."""
    rcode: int
    answer: list[dns.rrset.RRset]
    authority: list[dns.rrset.RRset]
    additional: list[dns.rrset.RRset]
    ad: bool = False   # the upstream validated it (DNSSEC's AD bit)

    @classmethod
    def of(cls, msg: dns.message.Message) -> "Result":
        return cls(msg.rcode(), list(msg.answer), list(msg.authority),
                   [r for r in msg.additional if r.rdtype != dns.rdatatype.OPT],
                   bool(msg.flags & dns.flags.AD))


@dataclass
class _Item:
    result: Result
    stored: float
    expires: float


class Cache:
    def __init__(self, capacity: int = CAPACITY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self.clock = clock
        self._lock = threading.Lock()
        self._items: OrderedDict[Key, _Item] = OrderedDict()

    def get(self, key: Key) -> Result | None:
        now = self.clock()
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if now >= item.expires:
                del self._items[key]
                return None
            self._items.move_to_end(key)
        return _aged(item.result, int(now - item.stored))

    def put(self, key: Key, result: Result) -> None:
        ttl = _lifetime(result)
        if ttl <= 0:
            return
        now = self.clock()
        with self._lock:
            self._items[key] = _Item(result, now, now + ttl)
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)   # the least recently used

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def _lifetime(result: Result) -> int:
    if result.rcode == dns.rcode.NOERROR and result.answer:
        return min(MAX_TTL, min(r.ttl for r in result.answer + result.authority))
    if result.rcode in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        soas = [r for r in result.authority if r.rdtype == dns.rdatatype.SOA]
        if soas:
            return min(MAX_NEGATIVE_TTL, soas[0].ttl, soas[0][0].minimum)
    return 0


def _aged(result: Result, elapsed: int) -> Result:
    if elapsed <= 0:
        return result
    return Result(result.rcode, _copies(result.answer, elapsed),
                  _copies(result.authority, elapsed), _copies(result.additional, elapsed),
                  result.ad)


def _copies(rrsets: list[dns.rrset.RRset], elapsed: int) -> list[dns.rrset.RRset]:
    out = []
    for rrset in rrsets:
        copy = rrset.copy()
        copy.ttl = max(0, rrset.ttl - elapsed)
        out.append(copy)
    return out
