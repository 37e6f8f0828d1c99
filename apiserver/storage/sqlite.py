"""SQLite storage with a revision log (the kine idea): one file, WAL, durable commits.

Two tables: `log` has one row per write (its rowid is the revision) and `current` the newest
value of each live key, so that get and list-now do not scan history. Writes go through one
connection under a lock (serialised, like etcd's single writer); reads use one connection per
thread and run concurrently with writes thanks to WAL. synchronous=FULL makes every commit
reach the disk before the API server answers.

Compaction (kine style) drops only the log rows that a newer row at or below the compaction
revision supersedes, so the log can still answer "list at revision R" and "changes after R" for
any R >= the compaction revision.
"""
from __future__ import annotations

import os
import sqlite3
import threading
from typing import Callable

from . import (Compacted, Event, KeyExists, KeyNotFound, Record, RevisionConflict, Storage)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    rev INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    type INTEGER NOT NULL,          -- 0 added, 1 modified, 2 deleted
    prev_rev INTEGER NOT NULL,      -- the row this one supersedes (0: none)
    value BLOB NOT NULL             -- for deletes, the last value
);
CREATE INDEX IF NOT EXISTS log_key_rev ON log (key, rev);
CREATE TABLE IF NOT EXISTS current (
    key TEXT PRIMARY KEY,
    rev INTEGER NOT NULL,
    value BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('compacted', 0);
"""

_TYPES = ("ADDED", "MODIFIED", "DELETED")

# Keep this many revisions of history for watch and paged lists; compact every so many writes.
HISTORY_REVISIONS = 10000
COMPACT_EVERY = 1000


def _prefix_end(prefix: str) -> str:
    """The smallest string greater than every string starting with prefix."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1) if prefix else "\U0010ffff"


class SQLiteStorage(Storage):
    def __init__(self, path: str, history: int = HISTORY_REVISIONS):
        self._path = path
        self._history = history
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._writer = self._connect()
        self._writer.executescript(_SCHEMA)
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._subscribers: list[Callable[[Event], None]] = []
        self._rev = self._revision(self._writer)
        self._compacted = self._writer.execute(
            "SELECT value FROM meta WHERE name='compacted'").fetchone()[0]
        self._writes_since_compact = 0

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=10000")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    # reads

    def get(self, key: str) -> Record | None:
        row = self._reader().execute("SELECT rev, value FROM current WHERE key=?",
                                     (key,)).fetchone()
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
                    "SELECT l.key, l.rev, l.value FROM log l WHERE l.key >= ? AND l.key < ?"
                    " AND l.rev = (SELECT MAX(rev) FROM log m WHERE m.key = l.key AND m.rev <= ?)"
                    " AND l.type != 2 ORDER BY l.key" + (" LIMIT ?" if limit else ""),
                    (low, high, revision, limit) if limit else (low, high, revision)).fetchall()
                at = revision
            else:
                rows = conn.execute(
                    "SELECT key, rev, value FROM current WHERE key >= ? AND key < ? ORDER BY key"
                    + (" LIMIT ?" if limit else ""),
                    (low, high, limit) if limit else (low, high)).fetchall()
                at = now
        finally:
            conn.execute("COMMIT")
        return [Record(k, r, v) for k, r, v in rows], at

    @staticmethod
    def _revision(conn: sqlite3.Connection) -> int:
        # AUTOINCREMENT's sequence: the newest revision, even if compaction emptied the log.
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name='log'").fetchone()
        return row[0] if row else 0

    def events_since(self, revision: int, prefix: str = "") -> list[Event]:
        conn = self._reader()
        compacted = conn.execute("SELECT value FROM meta WHERE name='compacted'").fetchone()[0]
        if revision < compacted:
            raise Compacted(revision, compacted)
        query = ("SELECT l.rev, l.key, l.type, l.value, p.value FROM log l"
                 " LEFT JOIN log p ON p.rev = l.prev_rev WHERE l.rev > ?")
        args: tuple = (revision,)
        if prefix:
            query += " AND l.key >= ? AND l.key < ?"
            args += (prefix, _prefix_end(prefix))
        rows = conn.execute(query + " ORDER BY l.rev", args).fetchall()
        return [Event(_TYPES[t], k, r, v, p) for r, k, t, v, p in rows]

    def current_revision(self) -> int:
        return self._rev

    def compacted_revision(self) -> int:
        return self._compacted

    # writes

    def create(self, key: str, value: bytes) -> Record:
        def op(conn: sqlite3.Connection) -> Event:
            if conn.execute("SELECT 1 FROM current WHERE key=?", (key,)).fetchone():
                raise KeyExists(key)
            rev = self._append(conn, key, 0, 0, value)
            conn.execute("INSERT INTO current VALUES (?, ?, ?)", (key, rev, value))
            return Event("ADDED", key, rev, value, None)
        event = self._write(op)
        return Record(key, event.rev, value)

    def update(self, key: str, value: bytes, expected_rev: int) -> Record:
        def op(conn: sqlite3.Connection) -> Event:
            row = conn.execute("SELECT rev, value FROM current WHERE key=?", (key,)).fetchone()
            if row is None:
                raise KeyNotFound(key)
            if expected_rev and row[0] != expected_rev:
                raise RevisionConflict(Record(key, row[0], row[1]))
            rev = self._append(conn, key, 1, row[0], value)
            conn.execute("UPDATE current SET rev=?, value=? WHERE key=?", (rev, value, key))
            return Event("MODIFIED", key, rev, value, row[1])
        event = self._write(op)
        return Record(key, event.rev, value)

    def delete(self, key: str, expected_rev: int = 0) -> Record:
        def op(conn: sqlite3.Connection) -> Event:
            row = conn.execute("SELECT rev, value FROM current WHERE key=?", (key,)).fetchone()
            if row is None:
                raise KeyNotFound(key)
            if expected_rev and row[0] != expected_rev:
                raise RevisionConflict(Record(key, row[0], row[1]))
            rev = self._append(conn, key, 2, row[0], row[1])
            conn.execute("DELETE FROM current WHERE key=?", (key,))
            return Event("DELETED", key, rev, row[1], row[1])
        event = self._write(op)
        return Record(key, event.rev, event.value)

    def _append(self, conn: sqlite3.Connection, key: str, kind: int, prev_rev: int,
                value: bytes) -> int:
        cur = conn.execute("INSERT INTO log (key, type, prev_rev, value) VALUES (?, ?, ?, ?)",
                           (key, kind, prev_rev, value))
        return cur.lastrowid

    def _write(self, op: Callable[[sqlite3.Connection], Event]) -> Event:
        with self._write_lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                event = op(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._rev = event.rev
            # Subscribers run under the lock so that they see events in revision order.
            for callback in self._subscribers:
                callback(event)
            self._writes_since_compact += 1
            if self._writes_since_compact >= COMPACT_EVERY:
                self._writes_since_compact = 0
                self._compact_locked(self._rev - self._history)
        return event

    def compact(self, revision: int) -> None:
        with self._write_lock:
            self._compact_locked(min(revision, self._rev))

    def _compact_locked(self, revision: int) -> None:
        if revision <= self._compacted:
            return
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")
        # A row is dead at `revision` if a newer row of its key at or below `revision` exists;
        # a delete row at or below `revision` is itself dead once nothing older needs it.
        conn.execute(
            "DELETE FROM log WHERE rev <= ?1 AND (type = 2 OR EXISTS (SELECT 1 FROM log n"
            " WHERE n.key = log.key AND n.rev > log.rev AND n.rev <= ?1))", (revision,))
        conn.execute("UPDATE meta SET value=? WHERE name='compacted'", (revision,))
        conn.execute("COMMIT")
        self._compacted = revision

    def subscribe(self, callback: Callable[[Event], None]) -> None:
        self._subscribers.append(callback)

    def close(self) -> None:
        with self._write_lock:
            self._writer.close()
