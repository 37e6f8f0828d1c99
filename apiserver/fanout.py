"""One thread writes every live JSON watch (issue 28).

A watch served by its own connection thread wakes that thread for every event: with 200
watchers, 200 thread switches per event, most of the server's CPU. So once a JSON watch has
sent its initial objects, its connection thread hands the client's socket to the hub's FanOut
and waits: one thread takes each event once, appends its shared JSON line to every matching
watch and writes each watch's lines in one non-blocking TLS write. A client that cannot take
its bytes at once keeps them pending (retried every POLL_SECONDS) and one that falls more than
watch.QUEUE_LIMIT events or UNSENT_LIMIT bytes behind is ended, as a queued watcher is (and one
whose queue overflowed before the hand-over: it lost events; and every one when the storage
started again from a list, RESET). At its deadline, when its client goes away, or on overflow
a watch goes back to its connection thread with the bytes it has not sent, which that thread
writes before the last chunk. Table watches keep the thread.
"""
from __future__ import annotations

import logging
import queue
import socket
import ssl
import threading
import time
from typing import Callable, Iterator

from .watch import QUEUE_LIMIT, WatchEvent, Watcher, WatchHub, filtered

log = logging.getLogger(__name__)

# How often a watch whose client's socket was full is retried, and idle watches checked.
POLL_SECONDS = 0.02
CHECK_SECONDS = 1.0
# An idle watch checks this often that its client is still connected, and sends a bookmark
# this often when its client asked for them (the Table watches of the REST layer too).
LIVENESS_SECONDS = 5.0
BOOKMARK_SECONDS = 60.0
# A watch whose client has not taken this many bytes is ended: the bytes of its pending write
# and queued lines are its own (a joined chunk), and events can be large, so a count of events
# alone does not bound a dead client's memory.
UNSENT_LIMIT = 16 << 20
# Queued where the hub's storage started again from a list: every watch written so far ends.
RESET = object()


class Sink:
    """One watch while the FanOut writes it."""

    def __init__(self, watcher: Watcher, sent: int, matches: Callable[[dict], bool],
                 deadline: float, bookmark: Callable[[int], bytes] | None):
        self.watcher = watcher
        self.prefix = watcher.prefix
        self.sent = sent
        self.matches = matches
        self.deadline = deadline
        self.bookmark = bookmark
        self.sock: ssl.SSLSocket | None = None
        self.lines: list[bytes] = []
        self.inflight = b""      # a chunk a write began: retried with these very bytes (TLS)
        self.queued = 0
        self.unsent = 0          # bytes of inflight and lines
        # Too far behind (or its queue overflowed before the hand-over): ended, and its client
        # resumes from the last event it got.
        self.behind = watcher.overflowed
        now = time.monotonic()
        self.last_write = self.last_bookmark = self.last_liveness = now
        self.gone = False        # the client closed or the write failed
        self.done = threading.Event()

    def add(self, ev: WatchEvent) -> None:
        # Once behind, its lines are dropped: the rest of a batch would only add to them.
        if ev.rev <= self.sent or self.behind:
            return
        self.sent = ev.rev
        kind = filtered(ev, self.matches)
        if kind:
            line = ev.encoded(kind)
            self.lines.append(line)
            self.queued += 1
            self.unsent += len(line)
            if self.queued > QUEUE_LIMIT or self.unsent > UNSENT_LIMIT:
                # A client that reads is not behind because the thread took many events in
                # one batch (a busy machine): what its socket takes now goes first.
                self.flush()
                self.behind = self.queued > QUEUE_LIMIT or self.unsent > UNSENT_LIMIT

    def flush(self) -> None:
        if not self.inflight and self.lines:
            data = b"".join(self.lines)
            self.inflight = b"%x\r\n%s\r\n" % (len(data), data)
            self.lines, self.queued = [], 0
            self.unsent = len(self.inflight)
        if not self.inflight:
            return
        try:
            # TLS writes all or nothing (a retry must pass the same bytes); a plain socket
            # may take part.
            sent = self.sock.send(self.inflight)
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
            return
        except OSError:
            self.gone = True
            return
        self.inflight = self.inflight[sent:]
        self.unsent -= sent
        self.last_write = time.monotonic()

    def client_closed(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return False
        except OSError:
            return True


class FanOut:
    """The fan-out thread of one WatchHub, started with its first watch."""

    def __init__(self, hub: WatchHub):
        self._hub = hub
        self._queue: queue.SimpleQueue[WatchEvent | tuple[Sink, list[WatchEvent]] | object] = \
            queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def add(self, sink: Sink) -> None:
        """Takes over the sink's watcher: the events queued for it first, then every later
        one, in order."""
        with self._start_lock:
            if self._thread is None:
                self._hub.tap(self._queue.put, lambda: self._queue.put(RESET))
                self._thread = threading.Thread(target=self._run, name="watch-fanout",
                                                daemon=True)
                self._thread.start()

        def take(queued: list[WatchEvent]) -> None:
            # Only queued here: take runs under the hub's lock, which the commit path needs,
            # and filtering up to QUEUE_LIMIT events may decode every one of them.
            sink.behind = sink.behind or sink.watcher.overflowed
            self._queue.put((sink, queued))
        self._hub.hand_over(sink.watcher, take)

    def _run(self) -> None:
        sinks: list[Sink] = []
        last_check = time.monotonic()
        # Every event up to this revision has been given to every sink (0: not known yet), so
        # a bookmark may name it. Taken from the events handed out, not only when the queue is
        # empty: under a steady 100 writes/s it never was, no bookmark went out, and 1,000 node
        # watches resumed at their deadline from the revision of their last pod, replaying
        # every pod change since (issue 28).
        handed = 0
        while True:
            blocked = any(s.inflight or s.lines for s in sinks)
            seen = self._hub.last_rev
            try:
                items = [self._queue.get(timeout=POLL_SECONDS if blocked else CHECK_SECONDS)]
            except queue.Empty:
                items = []
                handed = max(handed, seen)
            while True:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            for item in items:
                if item is RESET:
                    for s in sinks:
                        s.behind = True
                    continue
                if isinstance(item, tuple):
                    sink, queued = item
                    self._add_queued(sink, queued)
                    sinks.append(sink)
                    continue
                handed = item.rev
                for s in sinks:
                    if item.key.startswith(s.prefix):
                        try:
                            s.add(item)
                        except Exception:  # noqa: BLE001 - one watch's bug ends only it
                            log.exception("watch on %s", s.prefix)
                            s.gone = True
            now = time.monotonic()
            if now - last_check >= CHECK_SECONDS or not items:
                last_check = now
                for s in sinks:
                    self._check(s, now, handed)
            ended = []
            for s in sinks:
                if s.gone or s.behind or now >= s.deadline:
                    ended.append(s)
                else:
                    s.flush()
                    if s.gone:
                        ended.append(s)
            if ended:
                ids = {id(s) for s in ended}
                sinks = [s for s in sinks if id(s) not in ids]
            for s in ended:
                if s.behind:
                    s.lines = []  # its client resumes from the last event it got
                elif s.bookmark and handed and not s.gone:
                    # As kube's cacher does before a watch's timeout: its client resumes from
                    # here, not from its last event, which may be long ago.
                    s.lines.append(s.bookmark(max(s.sent, handed)))
                s.done.set()

    @staticmethod
    def _add_queued(sink: Sink, queued: list[WatchEvent]) -> None:
        try:
            for ev in queued:
                sink.add(ev)
        except Exception:  # noqa: BLE001 - one watch's bug ends only it
            log.exception("watch on %s", sink.prefix)
            sink.gone = True

    @staticmethod
    def _check(s: Sink, now: float, quiet_rev: int) -> None:
        """Liveness of an idle client and its bookmark; quiet_rev: every event up to it has
        been handed out (0: not known)."""
        if s.inflight or s.lines or now - s.last_write < LIVENESS_SECONDS:
            return
        if now - s.last_liveness >= LIVENESS_SECONDS:
            s.last_liveness = now
            if s.client_closed():
                s.gone = True
                return
        if s.bookmark and quiet_rev and now - s.last_bookmark >= BOOKMARK_SECONDS:
            s.last_bookmark = now
            s.lines.append(s.bookmark(max(s.sent, quiet_rev)))


class LiveStream:
    """The chunks of a JSON watch response: its first chunk (initial objects, history) as
    an iterable, then stream_to, which the transport calls with the client's socket."""

    def __init__(self, first: list[bytes], fanout: FanOut, sink: Sink):
        self._first = first
        self._fanout = fanout
        self._sink = sink

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._first)

    def stream_to(self, sock: socket.socket) -> bytes:
        """Streams until the watch ends; returns the chunk bytes not yet sent. Raises
        ConnectionError when the client is gone."""
        sink = self._sink
        sink.sock = sock
        sock.setblocking(False)
        try:
            self._fanout.add(sink)
            sink.done.wait()
        finally:
            sock.settimeout(None)
        if sink.gone:
            raise ConnectionError("watch client gone")
        rest = b"".join(sink.lines)
        return sink.inflight + (b"%x\r\n%s\r\n" % (len(rest), rest) if rest else b"")

    def close(self) -> None:
        self._sink.watcher.close()
