"""Copies bytes both ways between two connected sockets (TLS or plain) until either side closes,
as kube-apiserver's upgrade-aware proxy does once a kubelet has switched protocols.

One thread drives both sockets, non-blocking, through a selector: an SSLSocket must not be read
and written from two threads at once. OpenSSL keeps decrypted bytes that select() cannot see
(`SSLSocket.pending()`), so a socket is read until it would block, and reading resumes without
waiting for select() as soon as the other side's buffer has room again."""
from __future__ import annotations

import selectors
import socket
import ssl
import time
from dataclasses import dataclass, field

CHUNK = 65536
# Bytes buffered towards one side before we stop reading from the other (back-pressure).
BUFFER_LIMIT = 4 * CHUNK
# After one side closed, how long the other gets to take what is still buffered for it.
FLUSH_SECONDS = 10.0


@dataclass
class _Side:
    sock: socket.socket
    out: bytearray = field(default_factory=bytearray)  # waiting to be written to this side
    retry_len: int = 0        # OpenSSL wants a refused write repeated with the same length
    read_wants_write: bool = False
    write_wants_read: bool = False
    closed: bool = False      # read EOF or an error: nothing more comes from or goes to it

    def read_into(self, out: bytearray) -> int:
        total = 0
        while len(out) < BUFFER_LIMIT:
            try:
                data = self.sock.recv(CHUNK)
            except (ssl.SSLWantReadError, BlockingIOError, InterruptedError):
                break
            except ssl.SSLWantWriteError:
                self.read_wants_write = True
                break
            except OSError:
                self.closed = True
                break
            self.read_wants_write = False
            if not data:
                self.closed = True
                break
            out += data
            total += len(data)
        return total

    def flush(self) -> int:
        total = 0
        while self.out and not self.closed:
            n = self.retry_len or min(len(self.out), CHUNK)
            try:
                sent = self.sock.send(bytes(self.out[:n]))
            except ssl.SSLWantReadError:
                self.retry_len, self.write_wants_read = n, True
                break
            except (ssl.SSLWantWriteError, BlockingIOError, InterruptedError):
                self.retry_len = n
                break
            except OSError:
                self.closed = True
                break
            self.retry_len, self.write_wants_read = 0, False
            del self.out[:sent]
            total += sent
        return total

    def events(self, other: _Side) -> int:
        mask = 0
        if (not self.closed and len(other.out) < BUFFER_LIMIT) or self.write_wants_read:
            mask |= selectors.EVENT_READ
        if (self.out and not self.closed) or self.read_wants_write:
            mask |= selectors.EVENT_WRITE
        return mask


def splice(a: socket.socket, b: socket.socket, to_a: bytes = b"", to_b: bytes = b"") -> None:
    """Runs until a or b closes; `to_a`/`to_b` are bytes already received for the other side.
    Whatever is still buffered for the open side is flushed, then both sockets are closed."""
    sides = _Side(a, bytearray(to_a)), _Side(b, bytearray(to_b))
    for s in sides:
        s.sock.settimeout(0.0)
    try:
        with selectors.DefaultSelector() as sel:
            _copy(sel, sides)
            _drain(sel, sides)
    finally:
        for s in sides:
            _close(s.sock)


def _copy(sel: selectors.BaseSelector, sides: tuple[_Side, _Side]) -> None:
    x, y = sides
    while True:
        progress = True
        while progress:
            progress = False
            for src, dst in ((x, y), (y, x)):
                if not src.closed and len(dst.out) < BUFFER_LIMIT:
                    progress |= src.read_into(dst.out) > 0
                progress |= dst.flush() > 0
            if x.closed or y.closed:
                return
        _wait(sel, sides)


def _drain(sel: selectors.BaseSelector, sides: tuple[_Side, _Side]) -> None:
    deadline = time.monotonic() + FLUSH_SECONDS
    open_side = next((s for s in sides if not s.closed), None)
    if open_side is None:
        return
    other = sides[1] if open_side is sides[0] else sides[0]
    other.out.clear()
    while open_side.out and not open_side.closed:
        open_side.flush()
        left = deadline - time.monotonic()
        if not open_side.out or left <= 0:
            return
        # only writes are left to do (the peer's bytes would go nowhere)
        _watch(sel, open_side.sock, selectors.EVENT_READ if open_side.write_wants_read
               else selectors.EVENT_WRITE)
        sel.select(left)


def _wait(sel: selectors.BaseSelector, sides: tuple[_Side, _Side]) -> None:
    x, y = sides
    for side, other in ((x, y), (y, x)):
        # A side left out (its reader's buffer full) is read again once there is room: the
        # other side then has bytes to write, so at least one side is always watched.
        _watch(sel, side.sock, side.events(other))
    sel.select()


def _watch(sel: selectors.BaseSelector, sock: socket.socket, mask: int) -> None:
    registered = sock in sel.get_map()
    if mask and registered:
        sel.modify(sock, mask)
    elif mask:
        sel.register(sock, mask)
    elif registered:
        sel.unregister(sock)


def _close(sock: socket.socket) -> None:
    if isinstance(sock, ssl.SSLSocket):
        try:
            sock.unwrap()  # sends close_notify; the peer's answer is not waited for
        except (OSError, ValueError):
            pass
    try:
        sock.close()
    except OSError:
        pass
