"""Rendered responses by the bytes of their query: the same question from the same kind of
client gets the same bytes back, without parsing or rendering again. An entry lives at most a
second (so that forwarded answers' TTLs stay true to the second) and only while the cluster has
not changed since it was rendered (the view's generation).

The key is the query without its ID and with its question's name in lower case, so that
resolvers randomizing the case of names (DNS 0x20) share entries; a reuse puts the query's ID
and name back. Our responses start with the question, and names below it are compressed to
point into it, so the asker's spelling is what it reads back everywhere, as CoreDNS keeps the
query's case."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

LIFETIME = 1.0
CAPACITY = 20000
HEADER = 12


def question_end(wire: bytes) -> int:
    """Where the first question's name ends (after its root label), 0 if it is not plain
    labels (a compression pointer, or past the end)."""
    i = HEADER
    while i < len(wire):
        length = wire[i]
        if length == 0:
            return i + 1
        if length > 63:
            return 0
        i += length + 1
    return 0


@dataclass
class Memo:
    generation: Callable[[], int]
    clock: Callable[[], float] = time.monotonic
    _items: dict[tuple[bool, bytes], tuple[float, int, bytes]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, query: bytes, udp: bool) -> bytes | None:
        """The response to `query`, with the query's ID and name, or None."""
        end = question_end(query)
        if not end:
            return None
        item = self._items.get((udp, _key(query, end)))
        if item is None:
            return None
        expires, generation, response = item
        if self.clock() >= expires or generation != self.generation():
            return None
        return query[:2] + response[2:HEADER] + query[HEADER:end] + response[end:]

    def put(self, query: bytes, udp: bool, generation: int, response: bytes) -> None:
        """`generation`: the view's, read before the response was computed."""
        end = question_end(query)
        if not end or response[HEADER:end].lower() != query[HEADER:end].lower():
            return
        with self._lock:
            if len(self._items) >= CAPACITY:
                self._items.clear()   # hot names come back within a second
            self._items[(udp, _key(query, end))] = (self.clock() + LIFETIME, generation,
                                                     response)


def _key(query: bytes, end: int) -> bytes:
    # Label lengths are at most 63, below b"A": lower() changes only the letters of the name.
    return query[2:HEADER] + query[HEADER:end].lower() + query[end:]
