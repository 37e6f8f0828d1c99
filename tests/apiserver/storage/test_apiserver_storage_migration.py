"""SQLite storage layout (issue 28): a database of the first layout opens and is migrated; ~1 KB
objects are stored without overflow pages; compaction keeps the file from growing and, done in
steps, keeps exactly the rows one whole-log compaction keeps; concurrent writers are
group-committed. No server, no root."""
from __future__ import annotations

import json
import os
import random
import sqlite3
import threading

import pytest

from apiserver.storage import Compacted, KeyExists
from apiserver.storage.sqlite import SQLiteStorage

# Layout 1, as apiserver/storage/sqlite.py created it up to issue 28.
OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    rev INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    type INTEGER NOT NULL,
    prev_rev INTEGER NOT NULL,
    value BLOB NOT NULL
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


def pod(name: str, generation: int = 1) -> bytes:
    """A pod of about 1 KB, the size issue 28 measured."""
    return json.dumps({
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": name, "namespace": "default", "generation": generation,
                     "labels": {"app": "bench", "tier": "x" * 40}},
        "spec": {"containers": [{"name": "c", "image": "registry.example/app:" + "1" * 40,
                                 "env": [{"name": f"E{i}", "value": "v" * 20}
                                         for i in range(15)]}]}}).encode()


class OldWriter:
    """Writes as the layout 1 code did: value in both tables, deletes keep the last value."""

    def __init__(self, path: str):
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.executescript(OLD_SCHEMA)

    def _log(self, key: str, kind: int, prev: int, value: bytes) -> int:
        return self.conn.execute("INSERT INTO log (key, type, prev_rev, value) VALUES "
                                 "(?, ?, ?, ?)", (key, kind, prev, value)).lastrowid

    def create(self, key: str, value: bytes) -> int:
        rev = self._log(key, 0, 0, value)
        self.conn.execute("INSERT INTO current VALUES (?, ?, ?)", (key, rev, value))
        return rev

    def update(self, key: str, value: bytes) -> int:
        prev = self.conn.execute("SELECT rev FROM current WHERE key=?", (key,)).fetchone()[0]
        rev = self._log(key, 1, prev, value)
        self.conn.execute("UPDATE current SET rev=?, value=? WHERE key=?", (rev, value, key))
        return rev

    def delete(self, key: str) -> int:
        prev, value = self.conn.execute("SELECT rev, value FROM current WHERE key=?",
                                        (key,)).fetchone()
        rev = self._log(key, 2, prev, value)
        self.conn.execute("DELETE FROM current WHERE key=?", (key,))
        return rev

    def compact(self, revision: int) -> None:
        self.conn.execute(
            "DELETE FROM log WHERE rev <= ?1 AND (type = 2 OR EXISTS (SELECT 1 FROM log n"
            " WHERE n.key = log.key AND n.rev > log.rev AND n.rev <= ?1))", (revision,))
        self.conn.execute("UPDATE meta SET value=? WHERE name='compacted'", (revision,))


def log_revisions(path: str) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        return [rev for (rev,) in conn.execute("SELECT rev FROM log ORDER BY rev")]
    finally:
        conn.close()


def query(path: str, sql: str) -> tuple:
    """One row of sql on its own connection, closed again (the migration needs the file alone)."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchone()
    finally:
        conn.close()


def overflow_pages(path: str) -> int:
    return query(path, "SELECT count(*) FROM dbstat WHERE pagetype='overflow'")[0]


def test_old_database_opens_migrated_with_its_history(tmp_path):
    path = str(tmp_path / "state.db")
    old = OldWriter(path)
    for i in range(200):
        old.create(f"/registry/pods/default/p{i:03}", pod(f"p{i:03}"))
    old.compact(100)
    mid = old.update("/registry/pods/default/p001", pod("p001", 2))
    old.delete("/registry/pods/default/p002")
    last = old.update("/registry/pods/default/p001", pod("p001", 3))
    old.conn.close()
    assert overflow_pages(path) >= 199  # layout 1: every live ~1 KB pod spilled

    s = SQLiteStorage(path)
    try:
        assert s.current_revision() == last and s.compacted_revision() == 100
        assert s.get("/registry/pods/default/p001").value == pod("p001", 3)
        assert s.get("/registry/pods/default/p002") is None
        now, at = s.list("/registry/pods/")
        assert at == last and len(now) == 199 and now[0].value == pod("p000")
        past, _ = s.list("/registry/pods/", revision=mid)
        assert len(past) == 200 and past[1].value == pod("p001", 2)
        assert [(e.type, e.key[-4:], e.value, e.prev) for e in s.events_since(mid)] == [
            ("DELETED", "p002", pod("p002"), pod("p002")),
            ("MODIFIED", "p001", pod("p001", 3), pod("p001", 2))]
        with pytest.raises(Compacted):
            s.events_since(99)
        assert s.create("/registry/pods/default/new", pod("new")).rev == last + 1
        with pytest.raises(KeyExists):
            s.create("/registry/pods/default/p000", pod("p000"))
    finally:
        s.close()
    assert query(path, "PRAGMA user_version") == (3,)
    assert query(path, "PRAGMA page_size") == (4096,)
    assert query(path, "PRAGMA auto_vacuum") == (2,)  # incremental
    assert overflow_pages(path) == 0
    reopened = SQLiteStorage(path)  # a migrated database opens as it is
    try:
        assert reopened.current_revision() == last + 1
    finally:
        reopened.close()


def test_compaction_in_steps_keeps_what_one_whole_compaction_keeps(tmp_path):
    """Each compaction looks only at the rows written since the one before; the rows left
    must be those a compaction of the whole log at the same revision leaves: not the ones a
    newer row of their key at or below it supersedes, not the delete rows at or below it."""
    path = str(tmp_path / "state.db")
    s = SQLiteStorage(path, history=10 ** 9)   # no compaction but the test's
    rng = random.Random(7)
    rows: list[tuple[int, str, int]] = []     # (rev, key, type) of every write
    revs: dict[str, int] = {}

    def write(n: int) -> None:
        for _ in range(n):
            key = f"/registry/pods/ns/p{rng.randrange(40)}"
            if key not in revs:
                revs[key] = s.create(key, pod(key)).rev
                rows.append((revs[key], key, 0))
            elif rng.random() < 0.2:
                rows.append((s.delete(key, revs.pop(key)).rev, key, 2))
            else:
                revs[key] = s.update(key, pod(key, rng.randrange(9)), revs[key]).rev
                rows.append((revs[key], key, 1))

    def kept(revision: int) -> list[int]:
        newest = {}
        for rev, key, _ in rows:
            if rev <= revision:
                newest[key] = rev
        return [rev for rev, key, kind in rows
                if rev > revision or (kind != 2 and newest[key] == rev)]

    try:
        for _ in range(3):
            write(200)
            target = s.current_revision() - rng.randrange(50)
            s.compact(target)
            assert log_revisions(path) == kept(target)
            assert [(e.rev, e.key) for e in s.events_since(target)] == \
                [(rev, key) for rev, key, _ in rows if rev > target]
    finally:
        s.close()
    # Opened again, the first compaction looks at the whole log.
    s = SQLiteStorage(path, history=10 ** 9)
    try:
        write(200)
        s.compact(s.current_revision())
        assert log_revisions(path) == kept(s.current_revision())
    finally:
        s.close()


def test_one_kb_objects_stay_inline_and_compaction_reuses_pages(tmp_path):
    path = str(tmp_path / "state.db")
    s = SQLiteStorage(path, history=500)
    try:
        keys = [f"/registry/pods/default/p{i}" for i in range(300)]
        revs = {k: s.create(k, pod(k)).rev for k in keys}
        assert overflow_pages(path) == 0
        # stored compressed (layout 3): a ~1 KB pod takes about a third of that
        count, stored = query(path, "SELECT count(*), sum(length(value)) FROM log WHERE zlib = 1")
        assert count == 300 and stored < 300 * len(pod(keys[0])) // 2
        size, unused = query(path, "SELECT sum(pgsize), sum(unused) FROM dbstat"
                                   " WHERE name='log'")
        assert unused < size * 0.3  # three ~1 KB rows a 4 KiB page

        def churn(rounds: int) -> int:
            """The largest file (in pages) seen while every object is rewritten `rounds` times."""
            largest = 0
            for generation in range(rounds):
                for k in keys:
                    revs[k] = s.update(k, pod(k, generation), revs[k]).rev
                largest = max(largest, query(path, "PRAGMA page_count")[0])
            return largest

        # Enough writes for several compactions: the history window has reached its size.
        settled = churn(8)
        assert s.compacted_revision() > 0
        # Twelve more rounds: compaction frees the old rows' pages and the new rows reuse them.
        assert churn(12) <= settled * 1.1
    finally:
        s.close()


def test_concurrent_writers_share_commits_and_keep_revision_order(tmp_path):
    s = SQLiteStorage(str(tmp_path / "state.db"))
    seen = []
    s.subscribe(lambda e: seen.append(e.rev))
    acked: dict[str, int] = {}
    errors = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        try:
            for i in range(50):
                key = f"/registry/pods/w{n}/p{i}"
                rev = s.create(key, pod(key)).rev
                with lock:
                    acked[key] = rev
            with pytest.raises(KeyExists):
                s.create(f"/registry/pods/w{n}/p0", b"{}")
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(16)]
    try:
        for t in threads:
            t.start()
    finally:
        for t in threads:
            t.join()
    try:
        assert not errors
        assert sorted(acked.values()) == list(range(1, 801)) == seen
        for key, rev in acked.items():
            assert s.get(key).rev == rev
    finally:
        s.close()
    assert os.path.getsize(str(tmp_path / "state.db")) > 0
