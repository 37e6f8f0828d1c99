"""Restart back-off per key (a container of a pod, an image of a pod), as the kubelet's
flowcontrol.Backoff: the first failure costs nothing, each later one within the window waits
twice as long as the one before (10 s, 20 s, ... 300 s), and an entry quiet for twice the maximum
(10 minutes of clean running) starts over."""
from __future__ import annotations

import threading
import time

INITIAL = 10.0
MAXIMUM = 300.0


class Backoff:
    def __init__(self, initial: float = INITIAL, maximum: float = MAXIMUM,
                 clock=time.time) -> None:
        self.initial = initial
        self.maximum = maximum
        self.clock = clock
        self._entries: dict[str, tuple[float, float]] = {}   # key -> (delay, last restart)
        self._lock = threading.Lock()

    def _expired(self, now: float, last: float) -> bool:
        return now - last > 2 * self.maximum

    def next(self, key: str, event_time: float) -> None:
        """Records a restart after a failure at event_time: the next failure is held back by
        twice the delay, unless this one came more than 2 * maximum after the last restart."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or self._expired(event_time, entry[1]):
                delay = self.initial
            else:
                delay = min(entry[0] * 2, self.maximum)
            self._entries[key] = (delay, self.clock())

    def remaining(self, key: str, event_time: float) -> float:
        """How long after now a retry for a failure at event_time must still wait (0: none)."""
        with self._lock:
            entry = self._entries.get(key)
        now = self.clock()
        if entry is None or self._expired(now, entry[1]):
            return 0.0
        return max(0.0, entry[0] - (now - event_time))

    def remaining_since_update(self, key: str) -> float:
        """How long a retry must still wait, counted from the last recorded failure (image
        pulls, whose failures have no time of their own)."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is None:
            return 0.0
        return max(0.0, entry[0] - (self.clock() - entry[1]))

    def delay(self, key: str) -> float:
        with self._lock:
            entry = self._entries.get(key)
        return entry[0] if entry else 0.0

    def forget(self, prefix: str) -> None:
        """Drops every entry whose key starts with prefix (a pod that is gone)."""
        with self._lock:
            for key in [k for k in self._entries if k.startswith(prefix)]:
                del self._entries[key]
