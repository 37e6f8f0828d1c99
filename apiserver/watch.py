"""Watch: fans committed changes out to watchers, replays history from a resourceVersion,
and turns selector transitions into ADDED/DELETED the way kube's cacher does."""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from .storage import Event, Storage

# A watcher that falls this many events behind is closed; its client re-lists or resumes.
QUEUE_LIMIT = 10000
# At most this many queued events go to a watcher's client in one write.
SEND_BATCH = 256


class WatchEvent:
    """One committed change as watchers see it. The object is decoded only when something asks
    for it (a selector, Table output, the in-process scheduler); the JSON line of each event
    type is built once from the stored bytes, and the same bytes go to every watcher."""
    __slots__ = ("type", "rev", "key", "_value", "_prev_value", "_codec", "_obj", "_prev",
                 "_json", "_lines", "kinds")

    def __init__(self, type_: str, rev: int, key: str, value: bytes, prev_value: bytes | None,
                 codec: "Codec"):
        self.type, self.rev, self.key = type_, rev, key
        self._value, self._prev_value, self._codec = value, prev_value, codec
        self._obj: dict | None = None
        self._prev: dict | None = None
        self._json: bytes | None = None
        self._lines: dict[str, bytes] = {}
        # filtered()'s answer per matcher: watches with the same selectors share a matcher.
        self.kinds: dict[Callable[[dict], bool], str | None] = {}

    # Two threads may decode or encode the same event at once: both get equal results and
    # one of them is kept, which costs less than a lock per event.
    @property
    def obj(self) -> dict:
        if self._obj is None:
            self._obj = self._codec.decode(self._value, self.rev)
        return self._obj

    @property
    def prev(self) -> dict | None:
        if self._prev is None and self._prev_value is not None:
            self._prev = self._codec.decode(self._prev_value, 0)
        return self._prev

    def encoded(self, type_: str) -> bytes:
        """The JSON line for this event as `type_` (selectors turn a MODIFIED into an ADDED or
        DELETED for some watchers)."""
        line = self._lines.get(type_)
        if line is None:
            if self._json is None:
                self._json = self._codec.to_json(self._value, self.rev)
            line = self._lines[type_] = b'{"type":"%s","object":%s}\n' % (type_.encode(),
                                                                           self._json)
        return line


@dataclass(frozen=True)
class Codec:
    """How stored values become objects (decode(value, revision)) and JSON (to_json(value,
    revision), equal to the JSON of decode's object)."""
    decode: Callable[[bytes, int], dict]
    to_json: Callable[[bytes, int], bytes]


def everything(obj: dict) -> bool:
    """The matcher of a watch or list without selectors (filtered() then decodes nothing)."""
    return True


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

    def next_batch(self, timeout: float) -> list[WatchEvent]:
        """The events queued, at most SEND_BATCH, after waiting up to `timeout` for one."""
        first = self.next(timeout)
        if first is None:
            return []
        events = [first]
        while len(events) < SEND_BATCH:
            try:
                events.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return events

    def drain(self) -> list[WatchEvent]:
        events = []
        while True:
            try:
                events.append(self._queue.get_nowait())
            except queue.Empty:
                return events

    def close(self) -> None:
        self._hub.remove(self)


class WatchHub:
    """Subscribes to storage once and hands every change to the watchers whose prefix matches."""

    def __init__(self, storage: Storage, codec: Codec):
        self._storage = storage
        self._codec = codec
        self._watchers: list[Watcher] = []
        self._taps: list[Callable[[WatchEvent], None]] = []
        self._tap_resets: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self.last_rev = storage.current_revision()
        storage.subscribe(self._on_event)
        storage.on_reset(self._on_reset)

    def _on_event(self, event: Event) -> None:
        # Offered under the lock, so that hand_over moves a watcher between two events.
        with self._lock:
            targets = [w for w in self._watchers if event.key.startswith(w.prefix)]
            if targets or self._taps:
                wev = self.to_watch_event(event)
                for w in targets:
                    w.offer(wev)
                for tap in self._taps:
                    tap(wev)
            # Set after offering: a watcher that reads last_rev and then finds its queue
            # empty knows it has every event up to that revision.
            self.last_rev = event.rev

    def _on_reset(self, records: list, revision: int) -> None:
        """The storage skipped changes and started again from a list: every watch ends as if
        it had fallen behind, and its client resumes from its last event (the storage then
        answers with the changes still held, or 410 and the client relists), as kube's cacher
        ends all its watchers when its reflector relists."""
        with self._lock:
            for w in self._watchers:
                w.overflowed = True
            for reset in self._tap_resets:
                reset()
            self.last_rev = revision

    def tap(self, callback: Callable[[WatchEvent], None], reset: Callable[[], None]) -> None:
        """Gives callback every event (the fan-out thread, which filters by prefix itself), and
        calls reset where the storage started again from a list."""
        with self._lock:
            self._taps.append(callback)
            self._tap_resets.append(reset)

    def hand_over(self, w: Watcher, take: Callable[[list[WatchEvent]], None]) -> None:
        """Stops queueing events for `w` and calls take(the events queued for it), between
        two events: every later one reaches only the taps."""
        with self._lock:
            if w in self._watchers:
                self._watchers.remove(w)
            take(w.drain())

    def to_watch_event(self, event: Event) -> WatchEvent:
        return WatchEvent(event.type, event.rev, event.key, event.value, event.prev,
                          self._codec)

    def open(self, prefix: str) -> Watcher:
        w = Watcher(self, prefix)
        with self._lock:
            self._watchers.append(w)
        return w

    def remove(self, w: Watcher) -> None:
        with self._lock:
            if w in self._watchers:
                self._watchers.remove(w)

    def replay(self, prefix: str, since: int) -> Iterator[WatchEvent]:
        """Changes after `since` from the revision log, to be iterated once; raises
        storage.Compacted at once. Each event is made as it is taken, so that the objects a
        selector decodes go with it (issue 28: 1,000 watches resuming together from far back
        each kept every decoded object of their backlog at once)."""
        events = self._storage.events_since(since, prefix)
        return (self.to_watch_event(e) for e in events)


def filtered(event: WatchEvent, matches: Callable[[dict], bool]) -> str | None:
    """The event type this watcher should see, or None; an object that starts or stops
    matching the selectors is ADDED or DELETED for it, as kube-apiserver does."""
    if matches is everything:
        return event.type
    try:
        return event.kinds[matches]
    except KeyError:
        kind = event.kinds[matches] = _transition(event, matches)
        return kind


def _transition(event: WatchEvent, matches: Callable[[dict], bool]) -> str | None:
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


def stream(hub: WatchHub, watcher: Watcher, backlog: Iterable[WatchEvent], after: int,
           matches: Callable[[dict], bool], wait: float,
           deadline: Callable[[], bool]) -> Iterator[list[tuple[str, WatchEvent]] | int]:
    """Yields the (type, event) pairs to send, as many as were queued together (the caller
    writes them at once), or a revision when `wait` seconds passed with nothing to send (the
    caller may send a bookmark at it). Stops at the deadline or on overflow."""
    sent = after

    def to_send(events: Iterable[WatchEvent]) -> list[tuple[str, WatchEvent]]:
        nonlocal sent
        out = []
        for ev in events:
            if ev.rev > sent:
                sent = ev.rev
                kind = filtered(ev, matches)
                if kind:
                    out.append((kind, ev))
        return out

    if out := to_send(backlog):
        yield out
    while not deadline() and not watcher.overflowed:
        seen = hub.last_rev
        events = watcher.next_batch(wait)
        if not events:
            if watcher.overflowed:  # after a reset, `seen` may be past changes it never had
                break
            yield max(sent, seen)
            continue
        if out := to_send(events):
            yield out
