"""The watch cache: reads served from memory, so that LISTs and watch starts do not reach
the backend under load (kube-apiserver's cacher, issue 28).

`WatchCache` is a Storage that wraps another: writes go to the backend; every committed change
comes back through the backend's subscription and is applied to an in-memory copy of every live
key (a dict plus the sorted key list) and appended to a window of the last HISTORY events,
before the cache passes it on to its own subscribers (the WatchHub). Reads then come from
memory with the backend's resourceVersion semantics:

- get and list at the newest revision: the copy as it is;
- list at a past revision R still inside the window (resourceVersionMatch=Exact, and every
  page after the first of a paged list, whose continue token carries its revision): the copy
  with the window's changes after R undone, key by key (each event remembers the value and
  revision it replaced);
- events after R (a watch from resourceVersion R) inside the window: a slice of it;
- anything older than the window: the backend, which answers or raises Compacted (410).

When the backend's feed skipped changes (etcd compacted them first), the copy starts again
from the backend's list and the window from empty after it (`_reset`).

resourceVersion=0 / NotOlderThan lists are lists at the newest revision, which is never older
than any revision a client has seen.

Reads at the newest revision first wait until the cache holds the backend's current revision
(kube's consistent reads from cache): a worker of `pyapiserver --workers` then answers with
every write any worker acknowledged before, not only its own. Admission's reads (get_recent)
do not wait for a key the cache holds: in a worker, that wait is a round trip to the owner.

Consistency: the backend must call its subscribers before it acknowledges the write (SQLite's
group commit publishes each batch under its commit lock, before any of its writers returns), so
a client that got a write's answer reads it back from the cache. etcd feeds subscribers from a
watch stream that lags the write's answer: its current_revision waits for the feed to pass
etcd's revision at the call, which _catch_up then waits for (issue 25).
"""
from __future__ import annotations

import bisect
import itertools
import threading
from collections import deque
from dataclasses import dataclass
from typing import Callable

from .storage import Event, Record, Storage, StorageError

# Changes kept in memory for watch starts and paged lists; older ones come from the backend.
HISTORY = 2000
# How long a read waits for the cache to reach the backend's revision before it is an error.
CATCH_UP_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class _Change:
    event: Event
    prev_rev: int          # the key's revision before this change (0: it did not exist)


def _prefix_end(prefix: str) -> str:
    return prefix[:-1] + chr(ord(prefix[-1]) + 1) if prefix else "\U0010ffff"


class WatchCache(Storage):
    def __init__(self, backend: Storage, history: int = HISTORY):
        self._backend = backend
        self._lock = threading.Lock()
        self._caught_up = threading.Condition(self._lock)
        self._subscribers: list[Callable[[Event], None]] = []
        self._resets: list[Callable[[list[Record], int], None]] = []
        self._changes: deque[_Change] = deque(maxlen=history)
        records, self._rev = backend.list("")
        # The window holds every change after this revision.
        self._floor = self._rev
        self._live: dict[str, Record] = {r.key: r for r in records}
        self._keys: list[str] = [r.key for r in records]  # backend lists in key order
        backend.subscribe(self._apply)
        backend.on_reset(self._reset)

    def _apply(self, event: Event) -> None:
        with self._lock:
            if event.rev <= self._rev:
                return  # a feed that starts before the first list repeats what it listed
            old = self._live.get(event.key)
            if event.type == "DELETED":
                if old is not None:
                    del self._live[event.key]
                    del self._keys[bisect.bisect_left(self._keys, event.key)]
            else:
                if old is None:
                    bisect.insort(self._keys, event.key)
                self._live[event.key] = Record(event.key, event.rev, event.value)
            if len(self._changes) == self._changes.maxlen:
                self._floor = self._changes[0].event.rev
            self._changes.append(_Change(event, old.rev if old else 0))
            self._rev = event.rev
            self._caught_up.notify_all()
        for callback in self._subscribers:
            callback(event)

    def _reset(self, records: list[Record], revision: int) -> None:
        """The backend's feed skipped changes: the copy becomes its list, and the window starts
        empty after it, so a watch from before it is served by the backend (the changes still
        there, or 410), as kube's watch cache is replaced when its reflector relists."""
        with self._lock:
            self._live = {r.key: r for r in records}
            self._keys = [r.key for r in records]
            self._changes.clear()
            self._rev = self._floor = revision
            self._caught_up.notify_all()
        for callback in self._resets:
            callback(records, revision)

    def _held(self, revision: int) -> bool:
        """Whether the window has every change after `revision` (and the backend has not
        compacted it away, which an explicit compact may do inside the window)."""
        return revision >= self._floor and revision >= self._backend.compacted_revision()

    def _catch_up(self) -> None:
        target = self._backend.current_revision()
        if self._rev >= target:
            return
        with self._lock:
            if not self._caught_up.wait_for(lambda: self._rev >= target, CATCH_UP_SECONDS):
                raise StorageError(f"watch cache at revision {self._rev} did not reach "
                                   f"{target} in {CATCH_UP_SECONDS:g}s")

    # reads

    def get(self, key: str) -> Record | None:
        self._catch_up()
        return self._live.get(key)

    def get_recent(self, key: str) -> Record | None:
        """The cached record without waiting, when the cache holds the key (that state is at
        least as new as the key's creation); a key it does not hold may have been created
        through another worker since, so that is a consistent get, as kube's admission looks
        up live what its informer cache does not have."""
        record = self._live.get(key)
        return record if record is not None else self.get(key)

    def list(self, prefix: str, *, after: str = "", limit: int = 0,
             revision: int = 0) -> tuple[list[Record], int]:
        low = max(prefix, after + "\x00") if after else prefix
        high = _prefix_end(prefix)
        if not revision or revision >= self._rev:
            self._catch_up()
        with self._lock:
            start = bisect.bisect_left(self._keys, low)
            end = bisect.bisect_left(self._keys, high, start)
            if not revision or revision >= self._rev:
                if limit:
                    end = min(end, start + limit)
                return [self._live[k] for k in self._keys[start:end]], self._rev
            if self._held(revision):
                undone = self._undone_after(revision)
                keys = sorted(set(self._keys[start:end]).union(
                    k for k in undone if low <= k < high))
                out: list[Record] = []
                for key in keys:
                    record = undone[key] if key in undone else self._live[key]
                    if record is not None:
                        out.append(record)
                        if limit and len(out) == limit:
                            break
                return out, revision
        return self._backend.list(prefix, after=after, limit=limit, revision=revision)

    def _undone_after(self, revision: int) -> dict[str, Record | None]:
        """For each key changed after `revision`: its record at `revision` (None: absent)."""
        undone: dict[str, Record | None] = {}
        for change in reversed(self._changes):
            ev = change.event
            if ev.rev <= revision:
                break
            # Newest first, so the oldest change after `revision` is the one that stays.
            undone[ev.key] = (Record(ev.key, change.prev_rev, ev.prev)
                              if ev.prev is not None else None)
        return undone

    def events_since(self, revision: int, prefix: str = "") -> list[Event]:
        with self._lock:
            if self._held(revision):
                first = bisect.bisect_right(self._changes, revision, key=lambda c: c.event.rev)
                return [c.event for c in itertools.islice(self._changes, first, None)
                        if c.event.key.startswith(prefix)]
        return self._backend.events_since(revision, prefix)

    def current_revision(self) -> int:
        return self._rev

    def compacted_revision(self) -> int:
        return self._backend.compacted_revision()

    # writes: the backend's; the cache learns of them through its subscription

    def create(self, key: str, value: bytes) -> Record:
        return self._backend.create(key, value)

    def update(self, key: str, value: bytes, expected_rev: int) -> Record:
        return self._backend.update(key, value, expected_rev)

    def delete(self, key: str, expected_rev: int = 0) -> Record:
        return self._backend.delete(key, expected_rev)

    def compact(self, revision: int) -> None:
        self._backend.compact(revision)

    def subscribe(self, callback: Callable[[Event], None]) -> None:
        self._subscribers.append(callback)

    def on_reset(self, callback: Callable[[list[Record], int], None]) -> None:
        self._resets.append(callback)

    def close(self) -> None:
        self._backend.close()
