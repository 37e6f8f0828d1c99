"""Rendered responses by the exact bytes of their query (all but its ID): the same question
from the same kind of client gets the same bytes back, without parsing or rendering again. An
entry lives at most a second (so that forwarded answers' TTLs stay true to the second) and only
while the cluster has not changed since it was rendered (the view's generation)."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

LIFETIME = 1.0
CAPACITY = 20000


@dataclass
class Memo:
    generation: Callable[[], int]
    clock: Callable[[], float] = time.monotonic
    _items: dict[tuple[bool, bytes], tuple[float, int, bytes]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, query: bytes, udp: bool) -> bytes | None:
        """The response to `query` with the query's ID, or None."""
        item = self._items.get((udp, query[2:]))
        if item is None:
            return None
        expires, generation, response = item
        if self.clock() >= expires or generation != self.generation():
            return None
        return query[:2] + response[2:]

    def put(self, query: bytes, udp: bool, generation: int, response: bytes) -> None:
        """`generation`: the view's, read before the response was computed."""
        with self._lock:
            if len(self._items) >= CAPACITY:
                self._items.clear()   # hot names come back within a second
            self._items[(udp, query[2:])] = (self.clock() + LIFETIME, generation, response)
