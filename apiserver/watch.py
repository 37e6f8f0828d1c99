"""Watch: fans committed changes out to watchers, replays history from a resourceVersion,
and turns selector transitions into ADDED/DELETED the way kube's cacher does."""
from __future__ import annotations

import json
import queue
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterator

from .storage import Event, Storage

# A watcher that falls this many events behind is closed; its client re-lists or resumes.
QUEUE_LIMIT = 10000


@dataclass(slots=True)
class WatchEvent:
    type: str
    rev: int
    key: str
    obj: dict
    prev: dict | None
    _encoded: dict[str, bytes] = field(default_factory=dict)

    def encoded(self, type_: str) -> bytes:
        """The JSON line for this event, built once however many watchers send it."""
        line = self._encoded.get(type_)
        if line is None:
            line = self._encoded[type_] = json.dumps(
                {"type": type_, "object": self.obj}, separators=(",", ":")).encode() + b"\n"
        return line


class Watcher:
    def __init__(self, hub: "WatchHub", prefix: str):
        self.prefix = prefix
        self._hub = hub
        self._queue: queue.Queue[WatchEvent] = queue.Queue(QUEUE_LIMIT)
        self.overflowed = False

    def offer(self, event: WatchEvent) -> None:
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.overflowed = True

    def next(self, timeout: float) -> WatchEvent | None:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self._hub.remove(self)


class WatchHub:
    """Subscribes to storage once and hands every change to the watchers whose prefix matches."""

    def __init__(self, storage: Storage, decode: Callable[[bytes, int], dict]):
        self._storage = storage
        self._decode = decode
        self._watchers: list[Watcher] = []
        self._lock = threading.Lock()
        self.last_rev = storage.current_revision()
        storage.subscribe(self._on_event)

    def _on_event(self, event: Event) -> None:
        with self._lock:
            targets = [w for w in self._watchers if event.key.startswith(w.prefix)]
        if targets:
            wev = self.to_watch_event(event)
            for w in targets:
                w.offer(wev)
        # Set after offering: a watcher that reads last_rev and then finds its queue empty
        # knows it has every event up to that revision (see bookmark_revision).
        self.last_rev = event.rev

    def to_watch_event(self, event: Event) -> WatchEvent:
        obj = self._decode(event.value, event.rev)
        prev = self._decode(event.prev, 0) if event.prev is not None else None
        return WatchEvent(event.type, event.rev, event.key, obj, prev)

    def open(self, prefix: str) -> Watcher:
        w = Watcher(self, prefix)
        with self._lock:
            self._watchers.append(w)
        return w

    def remove(self, w: Watcher) -> None:
        with self._lock:
            if w in self._watchers:
                self._watchers.remove(w)

    def replay(self, prefix: str, since: int) -> list[WatchEvent]:
        """Changes after `since` from the revision log; raises storage.Compacted."""
        return [self.to_watch_event(e) for e in self._storage.events_since(since, prefix)]


def filtered(event: WatchEvent, matches: Callable[[dict], bool]) -> str | None:
    """The event type this watcher should see, or None; an object that starts or stops
    matching the selectors is ADDED or DELETED for it, as kube-apiserver does."""
    now = matches(event.obj)
    if event.type == "DELETED":
        return "DELETED" if now else None
    before = event.prev is not None and matches(event.prev)
    if now and before:
        return "MODIFIED"
    if now:
        return "ADDED"
    if before:
        return "DELETED"
    return None


def stream(hub: WatchHub, watcher: Watcher, backlog: list[WatchEvent], after: int,
           matches: Callable[[dict], bool], wait: float,
           deadline: Callable[[], bool]) -> Iterator[tuple[str, WatchEvent] | int]:
    """Yields (type, event) to send, or a revision when `wait` seconds passed with nothing to
    send (the caller may send a bookmark at it). Stops at the deadline or on overflow."""
    sent = after
    for ev in backlog:
        if ev.rev > sent:
            sent = ev.rev
            kind = filtered(ev, matches)
            if kind:
                yield kind, ev
    while not deadline() and not watcher.overflowed:
        seen = hub.last_rev
        ev = watcher.next(wait)
        if ev is None:
            yield max(sent, seen)
            continue
        if ev.rev <= sent:
            continue
        sent = ev.rev
        kind = filtered(ev, matches)
        if kind:
            yield kind, ev
