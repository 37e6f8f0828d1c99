"""One thread's I/O loop over the client's connection and the pipes and sockets of a session.

The client's socket may be an ssl.SSLSocket, which must not be read and written from two threads
at once: every byte to and from the client goes through this loop, in the thread that serves the
request. Other threads (the backend's run, a port-forward's dial) hand their results over with
`call_soon`. Flow control is by interest: a Watch only asks for readability while the client's
outbound buffer is small, so a fast producer waits for a slow client instead of filling memory."""
from __future__ import annotations

import os
import queue
import select
import socket
import ssl
import threading
from dataclasses import dataclass, field
from typing import Callable, Protocol

CHUNK = 65536
# Above this many bytes queued for the client, producers (pipes, dialled sockets) stop being read.
HIGH_WATER = 1 << 20


class Watch(Protocol):
    """Something with a file descriptor the loop polls for what it currently wants."""
    fd: int

    def interest(self) -> int: ...

    def ready(self) -> bool:
        """Input is waiting that poll() cannot see."""
        ...

    def on_event(self, events: int) -> None: ...


@dataclass(eq=False)
class Client:
    """The client's connection: a non-blocking socket with an outbound buffer."""
    sock: socket.socket
    on_data: Callable[[bytes], None]
    on_eof: Callable[[], None]
    # True while the consumer of what the client sends is full (a stdin pipe nobody reads).
    throttled: Callable[[], bool] = lambda: False
    on_closed: Callable[[], None] = lambda: None
    out: bytearray = field(default_factory=bytearray)
    reading: bool = True
    closing: bool = False     # close once `out` is flushed
    closed: bool = False

    def __post_init__(self) -> None:
        self.fd = self.sock.fileno()

    def interest(self) -> int:
        mask = select.POLLIN if self.reading and not self.closed and not self.throttled() else 0
        return mask | (select.POLLOUT if self.out and not self.closed else 0)

    def ready(self) -> bool:
        """Decrypted bytes wait in the SSL object, where poll() cannot see them."""
        return (self.reading and not self.closed and not self.throttled()
                and isinstance(self.sock, ssl.SSLSocket) and self.sock.pending() > 0)

    def send(self, data: bytes) -> None:
        if not self.closed:
            self.out += data
            self.flush()

    def congested(self) -> bool:
        return len(self.out) > HIGH_WATER

    def flush(self) -> None:
        while self.out and not self.closed:
            try:
                n = self.sock.send(self.out[:CHUNK])
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                return
            except OSError:
                self.abort()
                return
            del self.out[:n]
        if self.closing and not self.out:
            self.finish()

    def on_event(self, events: int) -> None:
        if self.out:
            self.flush()
        if self.reading:
            self._read()

    def _read(self) -> None:
        # An SSL socket may hold decrypted bytes that poll() does not see: drain pending() too.
        while self.reading and not self.closed and not self.throttled():
            try:
                data = self.sock.recv(CHUNK)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return
            except OSError:
                data = b""
            if not data:
                self.reading = False
                self.on_eof()
                return
            self.on_data(data)
            if not isinstance(self.sock, ssl.SSLSocket) or not self.sock.pending():
                return

    def close_when_flushed(self) -> None:
        self.closing = True
        self.flush()

    def finish(self) -> None:
        """Ends our direction (the peer reads EOF); the HTTP server closes the socket."""
        if self.closed:
            return
        self.closed = True
        self.reading = False
        if isinstance(self.sock, ssl.SSLSocket):
            try:
                # close_notify first: TLS clients that insist on it see a clean end, not a cut.
                self.sock.unwrap()
            except (OSError, ValueError):
                pass    # sent; the peer's own close_notify is not worth waiting for
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.on_closed()

    def abort(self) -> None:
        self.out.clear()
        self.finish()


@dataclass(eq=False)
class PipeReader:
    """A producer: the read end of a session's stdout/stderr pipe or a dialled socket."""
    fd: int
    client: Client
    on_data: Callable[[bytes], None]
    on_eof: Callable[[], None]
    sock: socket.socket | None = None
    done: bool = False

    def interest(self) -> int:
        return 0 if self.done or self.client.congested() else select.POLLIN

    def ready(self) -> bool:
        return False

    def on_event(self, events: int) -> None:
        try:
            data = self.sock.recv(CHUNK) if self.sock else os.read(self.fd, CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if data:
            self.on_data(data)
        else:
            self.done = True
            self.on_eof()

    def release(self) -> None:
        """Closes our end (a pipe's fd; a socket is its owner's to close)."""
        self.done = True
        if self.sock is None and self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


@dataclass(eq=False)
class PipeWriter:
    """A consumer: the write end of a session's stdin pipe or a dialled socket; `close` once
    flushed sends EOF."""
    fd: int
    sock: socket.socket | None = None
    out: bytearray = field(default_factory=bytearray)
    eof: bool = False
    done: bool = False

    def interest(self) -> int:
        return select.POLLOUT if self.out and not self.done else 0

    def ready(self) -> bool:
        return False

    def write(self, data: bytes) -> None:
        if not self.done:
            self.out += data
            self._flush()

    def backlog(self) -> int:
        return len(self.out)

    def close(self) -> None:
        self.eof = True
        self._flush()

    def on_event(self, events: int) -> None:
        if events & (select.POLLERR | select.POLLHUP) and not events & select.POLLOUT:
            self._drop()
            return
        self._flush()

    def _flush(self) -> None:
        while self.out and not self.done:
            try:
                chunk = self.out[:CHUNK]
                n = self.sock.send(chunk) if self.sock else os.write(self.fd, chunk)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._drop()     # the reader is gone (EPIPE): what it did not read is lost
                return
            del self.out[:n]
        if self.eof and not self.out and not self.done:
            self._drop()

    def _drop(self) -> None:
        """Our direction ends: the pipe's write end closes (its reader sees EOF), a socket is
        shut down for writing."""
        self.out.clear()
        if self.done:
            return
        self.done = True
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        else:
            os.close(self.fd)

    def release(self) -> None:
        self.eof = True
        self._drop()


class Loop:
    """poll() over the watches until `stop`; `call_soon` is the only thread-safe method."""

    def __init__(self) -> None:
        self._watches: dict[int, Watch] = {}
        self._calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._stopped = False
        # call_soon may race close() from another thread: the wake-up fd must not be reused.
        self._lock = threading.Lock()
        self._closed = False

    def add(self, watch: Watch) -> None:
        self._watches[watch.fd] = watch

    def remove(self, watch: Watch) -> None:
        if self._watches.get(watch.fd) is watch:
            del self._watches[watch.fd]

    def call_soon(self, fn: Callable[[], None]) -> None:
        """From any thread; dropped once the loop is closed (its connection is over)."""
        with self._lock:
            if self._closed:
                return
            self._calls.put(fn)
            try:
                os.write(self._wake_w, b"x")
            except BlockingIOError:
                pass        # already awake: the queue is drained on wake-up

    def stop(self) -> None:
        self._stopped = True

    def run(self) -> None:
        while not self._stopped:
            poller = select.poll()
            poller.register(self._wake_r, select.POLLIN)
            ready = []
            for fd, watch in list(self._watches.items()):
                mask = watch.interest()
                if mask:
                    poller.register(fd, mask)
                if watch.ready():
                    ready.append((fd, select.POLLIN))
            events = poller.poll(0 if ready else None) + ready
            for fd, ev in events:
                if fd == self._wake_r:
                    self._drain_calls()
                    continue
                watch = self._watches.get(fd)
                if watch is not None:
                    watch.on_event(ev)
                if self._stopped:
                    break
            self._drain_calls()

    def _drain_calls(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                fn = self._calls.get_nowait()
            except queue.Empty:
                return
            fn()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            os.close(self._wake_r)
            os.close(self._wake_w)


@dataclass(eq=False)
class Duplex:
    """A socket read and written through one fd (a port-forward's dialled connection)."""
    reader: PipeReader
    writer: PipeWriter

    def __post_init__(self) -> None:
        self.fd = self.reader.fd

    def interest(self) -> int:
        return self.reader.interest() | self.writer.interest()

    def ready(self) -> bool:
        return False

    def on_event(self, events: int) -> None:
        broken = events & (select.POLLERR | select.POLLHUP)
        if events & select.POLLOUT or (broken and self.writer.out):
            self.writer.on_event(events)
        if events & (select.POLLIN | select.POLLHUP | select.POLLERR) and not self.reader.done:
            self.reader.on_event(events)
