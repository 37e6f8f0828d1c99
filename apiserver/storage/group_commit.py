"""Group commit: concurrent writes share one SQLite transaction and one fsync.

A writer queues its operation and then takes the commit lock. Whoever holds the lock commits
everything queued so far as one batch; a writer whose operation a previous holder already
committed finds it done and returns at once. So while one batch waits for its fsync, the
writers that arrive meanwhile pile up and go to disk together in the next one: one writer costs
one fsync as before, sixteen cost a handful. Each operation runs inside a SAVEPOINT of the
batch's transaction, so one that refuses (the key exists, the revision moved) leaves the
others untouched, and it sees the writes queued before it, exactly as if the batch's writes had
run one after another. Nobody is answered before COMMIT returns, i.e. before the batch is on
disk (synchronous=FULL).
"""
from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class _Write(Generic[T]):
    op: Callable[[sqlite3.Connection], T]
    result: T | None = None
    error: BaseException | None = None
    done: bool = False


class GroupCommitter(Generic[T]):
    """Runs operations on `conn` in batches; `on_commit` gets each durable batch's results in
    order, still under the commit lock, so that it can publish them in commit order."""

    def __init__(self, conn: sqlite3.Connection, on_commit: Callable[[list[T]], None]):
        self._conn = conn
        self._on_commit = on_commit
        self._queue: list[_Write[T]] = []
        self._queue_lock = threading.Lock()
        # Held while a batch commits and is published; also serialises maintenance (compaction,
        # close) against batches.
        self.lock = threading.Lock()

    def submit(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Runs op in the next batch and returns its result once the batch is durable; raises
        what op raised (its writes then undone), or the commit's error."""
        write: _Write[T] = _Write(op)
        with self._queue_lock:
            self._queue.append(write)
        with self.lock:
            if not write.done:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._commit(batch)
        if write.error is not None:
            raise write.error
        return write.result  # type: ignore[return-value]

    def _commit(self, batch: list[_Write[T]]) -> None:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            for write in batch:
                conn.execute("SAVEPOINT op")
                try:
                    write.result = write.op(conn)
                except Exception as e:
                    conn.execute("ROLLBACK TO op")
                    write.error = e
                conn.execute("RELEASE op")
            conn.execute("COMMIT")
        except BaseException as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for write in batch:
                write.result, write.error, write.done = None, write.error or e, True
            return
        for write in batch:
            write.done = True
        self._on_commit([w.result for w in batch if w.error is None])  # type: ignore[misc]
