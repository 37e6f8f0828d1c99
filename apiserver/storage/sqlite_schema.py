"""The SQLite table layout, and the upgrade of databases written with the first one.

Layout 2 (PRAGMA user_version = 2) stores each value once, in the rowid table `log` (one row
per write, rowid = revision). A rowid table keeps up to page size - 35 bytes of a row on its
leaf page (4,061 bytes at PAGE_SIZE), so a ~1 KB pod sits inline; `current` only maps each
live key to the revision of its newest row (WITHOUT ROWID: key and revision in the index
itself, a few dozen bytes a row). Layout 1 kept the newest value a second time in a WITHOUT
ROWID `current`, whose rows may hold only ~1,000 bytes inline at 4 KiB pages: every pod of
~1 KB spilled into an overflow page of its own, mostly empty (issue 28 measured 21.6 MB of
28 MB unused).

Layout 3 adds `zlib`: values of COMPRESS_MIN bytes or more are stored zlib-compressed when that
saves a tenth (a pod as the server stores it, ~2.5 KB of JSON, becomes ~0.8 KB: four a page
instead of one). Layout 2 lacked the column (all its values are plain).

Delete rows carry no value (x''): the deleted object is the row they supersede (prev_rev),
which compaction keeps as long as the delete row is kept.

auto_vacuum=INCREMENTAL lets compaction hand free pages back to the file system without a
VACUUM; in steady state the pages compaction frees are reused by new rows anyway.
"""
from __future__ import annotations

import sqlite3

VERSION = 3
# 4 KiB pages: 8 KiB pages pack ~1 KB pods tighter (seven a page against three: 11 % of a page
# unused against 23 %, by dbstat) but every commit rewrites whole pages into the WAL, so they
# write 40 KB per pod create where 4 KiB pages write 22 KB (layout 1: 40 KB).
PAGE_SIZE = 4096

_TABLES = """
CREATE TABLE log (
    rev INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    type INTEGER NOT NULL,          -- 0 added, 1 modified, 2 deleted
    prev_rev INTEGER NOT NULL,      -- the row this one supersedes (0: none)
    value BLOB NOT NULL,            -- x'' for deletes: the value is prev_rev's
    zlib INTEGER NOT NULL DEFAULT 0 -- 1: value is zlib-compressed
);
CREATE INDEX log_key_rev ON log (key, rev);
CREATE TABLE current (key TEXT PRIMARY KEY, rev INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO meta VALUES ('compacted', 0);
"""

_FROM_1 = """
CREATE TABLE current_2 (key TEXT PRIMARY KEY, rev INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO current_2 SELECT key, rev FROM current;
DROP TABLE current;
ALTER TABLE current_2 RENAME TO current;
UPDATE log SET value = x'' WHERE type = 2;
ALTER TABLE log ADD COLUMN zlib INTEGER NOT NULL DEFAULT 0;
"""

_FROM_2 = "ALTER TABLE log ADD COLUMN zlib INTEGER NOT NULL DEFAULT 0"


def ensure(conn: sqlite3.Connection) -> None:
    """Creates the tables in an empty database or upgrades one of an older layout in place.
    Runs before any other connection is open on the file."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == VERSION:
        return
    if version == 2:
        _apply(conn, _FROM_2)
        return
    if version > VERSION:
        raise sqlite3.DatabaseError(f"database layout {version} is newer than this server's "
                                    f"({VERSION})")
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "current" not in tables:
        # Must precede the first table to take effect without a VACUUM.
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        _apply(conn, _TABLES)
        return
    _apply(conn, _FROM_1)
    # One rewrite of the upgraded file: drops the overflow pages of layout 1 and switches it to
    # PAGE_SIZE and incremental auto-vacuum, which only a VACUUM outside WAL mode can change.
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
    conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
    conn.execute("VACUUM")
    conn.execute("PRAGMA journal_mode=WAL")


def _apply(conn: sqlite3.Connection, script: str) -> None:
    """Runs script and sets the layout version in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in script.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
