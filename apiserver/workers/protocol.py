"""The storage protocol between the owner and its workers: length-prefixed pickles over a unix
socket that only root reaches (it sits in the 0700 data directory).

A call is `(method, args, kwargs)` answered by `("ok", value)` or `("err", name, args)`; storage errors
cross by name with the fields their constructors take, so that a worker raises the same
exception the backend raised. A feed is a call `("feed", (revision,), {})` answered by an endless
stream of `(events, compacted_revision)` frames.
"""
from __future__ import annotations

import pickle
import socket
import struct

from ..storage import Compacted, KeyExists, KeyNotFound, RevisionConflict, StorageError

_LENGTH = struct.Struct("!I")


def send(sock: socket.socket, message: object) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(_LENGTH.pack(len(data)) + data)


def receive(sock: socket.socket) -> object:
    """The next message; raises EOFError when the peer is gone."""
    (length,) = _LENGTH.unpack(_exactly(sock, _LENGTH.size))
    return pickle.loads(_exactly(sock, length))


def _exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("storage connection closed")
        buf += chunk
    return bytes(buf)


def error_reply(e: Exception) -> tuple:
    if isinstance(e, RevisionConflict):
        return ("err", "RevisionConflict", (e.current,))
    if isinstance(e, Compacted):
        return ("err", "Compacted", (e.requested, e.compacted))
    if isinstance(e, (KeyExists, KeyNotFound)):
        return ("err", type(e).__name__, e.args)
    return ("err", "StorageError", (str(e) if isinstance(e, StorageError) else repr(e),))


_ERRORS = {cls.__name__: cls for cls in (RevisionConflict, Compacted, KeyExists, KeyNotFound,
                                         StorageError)}


def raise_error(name: str, args: tuple) -> None:
    raise _ERRORS[name](*args)
