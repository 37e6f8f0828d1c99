"""What the fan-out tests share: a watch hub over a fresh SQLite store behind the watch cache,
and the client side of a socket pair standing for a watch's connection."""
from __future__ import annotations

import json
import socket

import pytest

from apiserver.registry.store import decode, stored_json
from apiserver.storage.sqlite import SQLiteStorage
from apiserver.watch import Codec, WatchHub
from apiserver.watchcache import WatchCache


@pytest.fixture
def hub(tmp_path):
    """(storage, its WatchHub)."""
    storage = WatchCache(SQLiteStorage(str(tmp_path / "state.db")))
    yield storage, WatchHub(storage, Codec(decode, stored_json))
    storage.close()


def chunks(data: bytes) -> list[dict]:
    """The watch events in a chunked body (without its last chunk)."""
    events = []
    while data:
        size, rest = data.split(b"\r\n", 1)
        n = int(size, 16)
        events += [json.loads(line) for line in rest[:n].splitlines()]
        data = rest[n + 2:]
    return events


def read_all(sock: socket.socket, out: bytearray) -> None:
    while chunk := sock.recv(65536):
        out += chunk
