"""SQLite storage with a revision log (the kine idea): one file, WAL, durable commits.

`log` has one row per write (its rowid is the revision) and `current` points each live key at
its newest row, so that get and list-now do not scan history (layout and upgrades:
sqlite_schema). Writes go through one connection in group commits (group_commit: concurrent
writes share a transaction and an fsync, serialised like etcd's single writer); reads use one
connection per thread and run concurrently with writes thanks to WAL. synchronous=FULL makes
every commit reach the disk before the API server answers.

Compaction (kine style, every COMPACT_EVERY writes, keeping HISTORY_REVISIONS revisions, as
kube-apiserver's compactor keeps etcd's last interval) drops only the log rows that a newer row
at or below the compaction revision supersedes, so the log can still answer "list at revision
R" and "changes after R" for any R >= the compaction revision; older ones are Compacted (410).
The pages it frees are reused by new rows, so the file stays the same size in steady state.
"""
from __future__ import annotations

import os
import sqlite3
import threading
import zlib
from typing import Callable, Iterator

from . import (Compacted, Event, KeyExists, KeyNotFound, Record, RevisionConflict, Storage)
from . import sqlite_schema
from .group_commit import GroupCommitter

_TYPES = ("ADDED", "MODIFIED", "DELETED")

# Keep this many revisions of history for watch and paged lists; compact every so many writes.
HISTORY_REVISIONS = 10000
COMPACT_EVERY = 1000
WAL_PAGES = 512
# Values at least this long are stored compressed (sqlite_schema, layout 3); level 1 costs
# ~15 µs for a pod and keeps most of the gain.
COMPRESS_MIN = 256
COMPRESS_LEVEL = 1
# A watch's replay reads this many log rows at a time (compressed, ~1 KB a pod), through a
# page cache of this many KiB (SQLite's default is 2 MiB per connection).
REPLAY_BATCH = 128
REPLAY_CACHE_KIB = 256


def _pack(value: bytes) -> tuple[bytes, int]:
    if len(value) >= COMPRESS_MIN:
        packed = zlib.compress(value, COMPRESS_LEVEL)
        if len(packed) < len(value) * 0.9:
            return packed, 1
    return value, 0


def _unpack(value: bytes, compressed: int) -> bytes:
    return zlib.decompress(value) if compressed else value


def _replay(conn: sqlite3.Connection, rows: sqlite3.Cursor) -> Iterator[Event]:
    try:
        while batch := rows.fetchmany(REPLAY_BATCH):
            for r, k, t, v, vz, p, pz in batch:
                prev = _unpack(p, pz) if p is not None else None
                yield Event(_TYPES[t], k, r, prev if t == 2 else _unpack(v, vz), prev)
    finally:
        conn.close()  # ends the read transaction


def _prefix_end(prefix: str) -> str:
    """The smallest string greater than every string starting with prefix."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1) if prefix else "\U0010ffff"


class SQLiteStorage(Storage):
    def __init__(self, path: str, history: int = HISTORY_REVISIONS):
        self._path = path
        self._history = history
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._writer = self._connect()
        sqlite_schema.ensure(self._writer)
        self._local = threading.local()
        self._subscribers: list[Callable[[Event], None]] = []
        self._rev = self._revision(self._writer)
        self._compacted = self._writer.execute(
            "SELECT value FROM meta WHERE name='compacted'").fetchone()[0]
        self._writes_since_compact = 0
        # The log has no row that a newer row at or below this revision supersedes, and no
        # delete row at or below it. 0 on opening: the first compaction looks at the whole log.
        self._swept = 0
        self._committer: GroupCommitter[Event] = GroupCommitter(self._writer, self._published)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        # Takes effect only in a new file (sqlite_schema): must precede WAL mode.
        conn.execute(f"PRAGMA page_size={sqlite_schema.PAGE_SIZE}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=10000")
        # A checkpoint every WAL_PAGES pages, and the WAL shrinks back to that size after one
        # instead of keeping its peak: the WAL stays a small part of the storage bytes.
        conn.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")
        conn.execute(f"PRAGMA journal_size_limit={WAL_PAGES * sqlite_schema.PAGE_SIZE}")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    # reads

    def get(self, key: str) -> Record | None:
        row = self._current(self._reader(), key)
        return Record(key, row[0], row[1]) if row else None

    def list(self, prefix: str, *, after: str = "", limit: int = 0,
             revision: int = 0) -> tuple[list[Record], int]:
        low = max(prefix, after + "\x00") if after else prefix
        high = _prefix_end(prefix)
        conn = self._reader()
        # One read transaction so that the rows and the revision we report agree.
        conn.execute("BEGIN")
        try:
            now = self._revision(conn)
            if revision and revision < now:
                compacted = conn.execute(
                    "SELECT value FROM meta WHERE name='compacted'").fetchone()[0]
                if revision < compacted:
                    raise Compacted(revision, compacted)
                rows = conn.execute(
                    "SELECT l.key, l.rev, l.value, l.zlib FROM log l WHERE l.key >= ? AND l.key < ?"
                    " AND l.rev = (SELECT MAX(rev) FROM log m WHERE m.key = l.key AND m.rev <= ?)"
                    " AND l.type != 2 ORDER BY l.key" + (" LIMIT ?" if limit else ""),
                    (low, high, revision, limit) if limit else (low, high, revision)).fetchall()
                at = revision
            else:
                rows = conn.execute(
                    "SELECT c.key, c.rev, l.value, l.zlib FROM current c JOIN log l"
                    " ON l.rev = c.rev"
                    " WHERE c.key >= ? AND c.key < ? ORDER BY c.key"
                    + (" LIMIT ?" if limit else ""),
                    (low, high, limit) if limit else (low, high)).fetchall()
                at = now
        finally:
            conn.execute("COMMIT")
        return [Record(k, r, _unpack(v, z)) for k, r, v, z in rows], at

    @staticmethod
    def _revision(conn: sqlite3.Connection) -> int:
        # AUTOINCREMENT's sequence: the newest revision, even if compaction emptied the log.
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name='log'").fetchone()
        return row[0] if row else 0

    def events_since(self, revision: int, prefix: str = "") -> Iterator[Event]:
        """Changes after `revision`, oldest first, to be iterated once: read REPLAY_BATCH
        rows at a time and made into events as they are taken, so that a watch resuming from
        far behind holds one batch, not the whole tail of the log. Raises Compacted here,
        before the first event, when `revision` is older than the window the log keeps (kube's
        watch cache answers "too old resource version" past its window; clients relist).

        The rows come from one read transaction (a snapshot: a compaction meanwhile changes
        nothing the replay sees) on a connection of its own, closed when the replay ends or is
        dropped: a thread's reader would be stuck in that transaction until then, and keep the
        pages of every replay it served in its cache."""
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout=10000")
            conn.execute(f"PRAGMA cache_size=-{REPLAY_CACHE_KIB}")
            conn.execute("BEGIN")
            compacted = conn.execute(
                "SELECT value FROM meta WHERE name='compacted'").fetchone()[0]
            if revision < compacted:
                raise Compacted(revision, compacted)
            # A delete row's value is the row it supersedes (sqlite_schema). In revision order
            # by the rowid itself: `+` keeps the planner off the key index, whose range would
            # have to be sorted by revision, all of it, before the first row.
            query = ("SELECT l.rev, l.key, l.type, l.value, l.zlib, p.value, p.zlib FROM log l"
                     " LEFT JOIN log p ON p.rev = l.prev_rev WHERE l.rev > ?")
            args: tuple = (revision,)
            if prefix:
                query += " AND +l.key >= ? AND +l.key < ?"
                args += (prefix, _prefix_end(prefix))
            rows = conn.execute(query + " ORDER BY l.rev", args)
        except BaseException:
            conn.close()
            raise
        return _replay(conn, rows)

    def current_revision(self) -> int:
        return self._rev

    def compacted_revision(self) -> int:
        return self._compacted

    # writes

    @staticmethod
    def _current(conn: sqlite3.Connection, key: str) -> tuple[int, bytes] | None:
        row = conn.execute("SELECT c.rev, l.value, l.zlib FROM current c JOIN log l"
                           " ON l.rev = c.rev WHERE c.key=?", (key,)).fetchone()
        return (row[0], _unpack(row[1], row[2])) if row else None

    def create(self, key: str, value: bytes) -> Record:
        def op(conn: sqlite3.Connection) -> Event:
            if conn.execute("SELECT 1 FROM current WHERE key=?", (key,)).fetchone():
                raise KeyExists(key)
            rev = self._append(conn, key, 0, 0, value)
            conn.execute("INSERT INTO current VALUES (?, ?)", (key, rev))
            return Event("ADDED", key, rev, value, None)
        event = self._committer.submit(op)
        return Record(key, event.rev, value)

    def update(self, key: str, value: bytes, expected_rev: int) -> Record:
        def op(conn: sqlite3.Connection) -> Event:
            row = self._expected(conn, key, expected_rev)
            rev = self._append(conn, key, 1, row[0], value)
            conn.execute("UPDATE current SET rev=? WHERE key=?", (rev, key))
            return Event("MODIFIED", key, rev, value, row[1])
        event = self._committer.submit(op)
        return Record(key, event.rev, value)

    def delete(self, key: str, expected_rev: int = 0) -> Record:
        def op(conn: sqlite3.Connection) -> Event:
            row = self._expected(conn, key, expected_rev)
            rev = self._append(conn, key, 2, row[0], b"")
            conn.execute("DELETE FROM current WHERE key=?", (key,))
            return Event("DELETED", key, rev, row[1], row[1])
        event = self._committer.submit(op)
        return Record(key, event.rev, event.value)

    def _expected(self, conn: sqlite3.Connection, key: str,
                  expected_rev: int) -> tuple[int, bytes]:
        """The key's current revision and value, if it exists and (when expected_rev is
        given) is still at that revision."""
        row = self._current(conn, key)
        if row is None:
            raise KeyNotFound(key)
        if expected_rev and row[0] != expected_rev:
            raise RevisionConflict(Record(key, row[0], row[1]))
        return row

    @staticmethod
    def _append(conn: sqlite3.Connection, key: str, kind: int, prev_rev: int,
                value: bytes) -> int:
        cur = conn.execute("INSERT INTO log (key, type, prev_rev, value, zlib) VALUES"
                           " (?, ?, ?, ?, ?)", (key, kind, prev_rev, *_pack(value)))
        return cur.lastrowid

    def _published(self, events: list[Event]) -> None:
        """A durable batch, under the commit lock: subscribers see events in revision order."""
        if not events:
            return
        for event in events:
            self._rev = event.rev
            for callback in self._subscribers:
                callback(event)
        self._writes_since_compact += len(events)
        if self._writes_since_compact >= COMPACT_EVERY:
            self._writes_since_compact = 0
            self._compact_locked(self._rev - self._history)

    def compact(self, revision: int) -> None:
        with self._committer.lock:
            self._compact_locked(min(revision, self._rev))

    def _compact_locked(self, revision: int) -> None:
        if revision <= self._compacted:
            return
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")
        # A row is dead at `revision` if a newer row of its key at or below `revision` exists;
        # a delete row at or below `revision` is itself dead once nothing older needs it. Rows
        # that only the rows after the last sweep can supersede are what is left to find: the
        # work is the writes since then, not every live object's row (this runs under the
        # commit lock, and 8,000 objects made the whole-log scan a 3 ms stall of every write).
        conn.execute(
            "DELETE FROM log WHERE rev IN (SELECT o.rev FROM log n JOIN log o"
            " ON o.key = n.key AND o.rev < n.rev WHERE n.rev > ?1 AND n.rev <= ?2)",
            (self._swept, revision))
        conn.execute("DELETE FROM log WHERE type = 2 AND rev > ?1 AND rev <= ?2",
                     (self._swept, revision))
        conn.execute("UPDATE meta SET value=? WHERE name='compacted'", (revision,))
        conn.execute("COMMIT")
        self._compacted = self._swept = revision
        # Free pages beyond a reserve for the next writes go back to the file system.
        free, total = (conn.execute(f"PRAGMA {p}").fetchone()[0]
                       for p in ("freelist_count", "page_count"))
        if free > total // 2:
            conn.execute(f"PRAGMA incremental_vacuum({free - total // 4})")

    def subscribe(self, callback: Callable[[Event], None]) -> None:
        self._subscribers.append(callback)

    def follow(self, revision: int, callback: Callable[[Event], None]) -> None:
        """Gives callback every change after `revision` from the log, then subscribes it, both
        under the commit lock so that no change falls between the two. Raises Compacted."""
        with self._committer.lock:
            for event in self.events_since(revision):
                callback(event)
            self._subscribers.append(callback)

    def unsubscribe(self, callback: Callable[[Event], None]) -> None:
        with self._committer.lock:  # not while a batch is being published
            self._subscribers.remove(callback)

    def close(self) -> None:
        with self._committer.lock:
            self._writer.close()
