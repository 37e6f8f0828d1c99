"""The storage owner: serves one SQLiteStorage to the workers over a unix socket.

Every call runs in the connection's own thread, so that concurrent writes from all workers
meet in the SQLite group commit and share its transactions and fsyncs; a write is answered only
after its batch is durable. Each worker also holds one feed: every change after the revision it
asks for, in revision order (history first, then live, with nothing between: SQLiteStorage's
follow), which keeps its watch cache in step.
"""
from __future__ import annotations

import logging
import os
import queue
import socket
import socketserver
import threading

from ..storage import Event, StorageError
from ..storage.sqlite import SQLiteStorage
from . import protocol

log = logging.getLogger(__name__)

# The owner's socket in the data directory (0700: only root reaches it).
STORAGE_SOCKET = "storage.sock"
# The Storage methods a worker may call.
CALLS = frozenset(("get", "list", "create", "update", "delete", "events_since",
                   "current_revision", "compacted_revision", "compact"))
# At most this many events per feed frame: one pickle and one send for a whole batch.
FEED_BATCH = 512


class StorageOwner(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, path: str, storage: SQLiteStorage):
        self.storage = storage
        if os.path.exists(path):  # left by a server that was killed
            os.unlink(path)
        super().__init__(path, _Connection)
        os.chmod(path, 0o600)
        self.path = path
        self._thread = threading.Thread(target=self.serve_forever, name="storage-owner",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class _Connection(socketserver.BaseRequestHandler):
    server: StorageOwner

    def handle(self) -> None:
        sock: socket.socket = self.request
        try:
            while True:
                method, args, kwargs = protocol.receive(sock)
                if method == "feed":
                    self._feed(sock, *args)
                    return
                protocol.send(sock, self._call(method, args, kwargs))
        except (EOFError, OSError):
            return  # the worker went away

    def _call(self, method: str, args: tuple, kwargs: dict) -> tuple:
        if method not in CALLS:
            return ("err", "StorageError", (f"unknown storage call {method!r}",))
        try:
            result = getattr(self.server.storage, method)(*args, **kwargs)
            if method == "events_since":  # a cursor: the worker gets the events in one reply
                result = list(result)
            return ("ok", result)
        except StorageError as e:
            return protocol.error_reply(e)
        except Exception as e:  # a bug must not end the connection; the worker answers 500
            log.exception("storage call %s", method)
            return protocol.error_reply(e)

    def _feed(self, sock: socket.socket, revision: int) -> None:
        storage = self.server.storage
        events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        try:
            storage.follow(revision, events.put)
        except StorageError as e:
            protocol.send(sock, protocol.error_reply(e))
            return
        try:
            while True:
                batch = [events.get()]
                while len(batch) < FEED_BATCH:
                    try:
                        batch.append(events.get_nowait())
                    except queue.Empty:
                        break
                protocol.send(sock, (batch, storage.compacted_revision()))
        finally:
            storage.unsubscribe(events.put)
