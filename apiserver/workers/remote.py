"""RemoteStorage: the Storage of a worker, the owner's SQLite reached over its unix socket.

Calls go over a small pool of connections (one per concurrent caller, reused). Subscribers are
fed from one feed connection, so they see every change in revision order. A write is answered
as soon as the owner has committed it, without waiting for the feed to bring it back: a client
still reads its own write, since every read at the newest revision from the worker's watch
cache first waits for the cache to reach the owner's current revision (watchcache). Losing the
owner ends the worker: its supervisor starts a new one.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Callable

from ..storage import Event, Record, Storage, StorageError
from . import protocol

log = logging.getLogger(__name__)


class RemoteStorage(Storage):
    def __init__(self, path: str):
        self._path = path
        self._pool: list[socket.socket] = []
        self._pool_lock = threading.Lock()
        self._subscribers: list[Callable[[Event], None]] = []
        self._fed = self._call("current_revision")  # subscribers get every change after this
        self._compacted = self._call("compacted_revision")
        self._feed_thread: threading.Thread | None = None

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self._path)
        return sock

    def _call(self, method: str, *args, **kwargs):
        with self._pool_lock:
            sock = self._pool.pop() if self._pool else None
        try:
            if sock is None:
                sock = self._connect()
            protocol.send(sock, (method, args, kwargs))
            reply = protocol.receive(sock)
        except (EOFError, OSError) as e:
            if sock is not None:
                sock.close()
            raise StorageError(f"storage owner unreachable: {e}") from None
        with self._pool_lock:
            self._pool.append(sock)
        if reply[0] == "err":
            protocol.raise_error(reply[1], reply[2])
        return reply[1]

    # reads

    def get(self, key: str) -> Record | None:
        return self._call("get", key)

    def list(self, prefix: str, *, after: str = "", limit: int = 0,
             revision: int = 0) -> tuple[list[Record], int]:
        return self._call("list", prefix, after=after, limit=limit, revision=revision)

    def events_since(self, revision: int, prefix: str = "") -> list[Event]:
        return self._call("events_since", revision, prefix)

    def current_revision(self) -> int:
        return self._call("current_revision")

    def compacted_revision(self) -> int:
        return self._compacted

    # writes

    def create(self, key: str, value: bytes) -> Record:
        return self._call("create", key, value)

    def update(self, key: str, value: bytes, expected_rev: int) -> Record:
        return self._call("update", key, value, expected_rev)

    def delete(self, key: str, expected_rev: int = 0) -> Record:
        return self._call("delete", key, expected_rev)

    def compact(self, revision: int) -> None:
        self._call("compact", revision)

    # the feed

    def subscribe(self, callback: Callable[[Event], None]) -> None:
        self._subscribers.append(callback)
        if self._feed_thread is None:
            sock = self._connect()
            protocol.send(sock, ("feed", (self._fed,), {}))
            self._feed_thread = threading.Thread(target=self._pump, args=(sock,),
                                                 name="storage-feed", daemon=True)
            self._feed_thread.start()

    def _pump(self, sock: socket.socket) -> None:
        try:
            while True:
                reply = protocol.receive(sock)
                if reply[0] == "err":
                    protocol.raise_error(reply[1], reply[2])
                events, self._compacted = reply
                for event in events:
                    for callback in self._subscribers:
                        callback(event)
        except (EOFError, OSError, StorageError) as e:
            # Without its feed the worker's cache would silently go stale.
            log.error("storage feed lost: %s; worker exits", e)
            os._exit(1)

    def close(self) -> None:
        with self._pool_lock:
            for sock in self._pool:
                sock.close()
            self._pool.clear()
