"""exec and attach over WebSocket (channel.k8s.io v1-v5, binary and base64) or SPDY/3.1
(remotecommand v1-v5), as the kubelet's streaming server speaks them.

    opts = remotecommand.options(query)                  # OptionsError: answer 400 with str(e)
    remotecommand.serve(handler, opts, run)              # returns when the session is over

`handler` is the http.server handler whose request head has been read; `run(session)` is the
backend (exec: returns the exit code; attach: None; raises StreamError), called in a thread of
its own once the client's streams are there. serve answers a request it cannot upgrade with a
plain 400 (403 when no stream protocol is common) and leaves the connection closed either way."""
from __future__ import annotations

import json
import logging
import os
import queue
import threading
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Callable, Protocol

from cri.streaming import handover, spdy, upgrade, websocket
from cri.streaming.backend import Session, StreamError, TerminalSize
from cri.streaming.channels import Channels
from cri.streaming.loop import HIGH_WATER, Client, Loop, PipeReader, PipeWriter
from cri.streaming.status import Outcome

log = logging.getLogger(__name__)

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255     # v5: [255, channel] half-closes a channel (the client's stdin)

V5, V4, V3, V2, V1 = ("v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io",
                      "v2.channel.k8s.io", "channel.k8s.io")
SPDY_PROTOCOLS = [V5, V4, V3, V2, V1]
WEBSOCKET_PROTOCOLS = [f"{v}.{codec}channel.k8s.io" if v else f"{codec}channel.k8s.io"
                       for v in ("v5", "v4", "v3", "v2", "") for codec in ("", "base64.")]

# The kubelet's default: how long a SPDY client has to open the streams it asked for.
STREAM_CREATION_TIMEOUT = 30.0

_STREAM_TYPES = {"stdin": STDIN, "stdout": STDOUT, "stderr": STDERR, "error": ERROR,
                 "resize": RESIZE}


class OptionsError(ValueError):
    """The query asks for no stream, or exec for no command; the message is kube's."""


@dataclass(frozen=True)
class Options:
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool
    command: tuple[str, ...] = ()   # exec only


def options(query: str, exec_: bool = True) -> Options:
    """The streams of an /exec or /attach request from its query string (the part after '?';
    a whole request path is accepted too)."""
    if "?" in query:
        query = query.split("?", 1)[1]
    params = urllib.parse.parse_qs(query, keep_blank_values=True)

    def flag(*names: str) -> bool:
        return any((params.get(name) or [""])[0].lower() in ("1", "true") for name in names)
    # kube-apiserver asks the kubelet with input/output/error (the kubelet's names, k8s.io/api's
    # ExecStdinParam ...); clients of the API server's pods/exec say stdin/stdout/stderr
    tty, stdin = flag("tty"), flag("input", "stdin")
    stdout, stderr = flag("output", "stdout"), flag("error", "stderr")
    stderr = stderr and not tty     # a terminal has one output stream (the kubelet drops stderr)
    if not (stdin or stdout or stderr):
        raise OptionsError("you must specify at least 1 of stdin, stdout, stderr")
    command = tuple(params.get("command", []))
    if exec_ and not command:
        raise OptionsError("you must specify at least one command for the container")
    return Options(stdin, stdout, stderr, tty, command if exec_ else ())


def _version(protocol: str) -> int:
    return int(protocol[1]) if protocol[:1] == "v" else 1


class _Wire(Protocol):
    """One protocol's side of a session: the client's streams."""

    def output(self, channel: int, data: bytes) -> None: ...

    def end_output(self, channel: int) -> None: ...

    def finish(self, outcome: Outcome) -> None:
        """The error stream, then the protocol's clean close."""
        ...


class _Session:
    """The pipes between the client's streams and a backend, and the end of the exchange."""

    def __init__(self, loop: Loop, client: Client, opts: Options,
                 run: Callable[[Session], int | None]) -> None:
        self.loop, self.client, self.opts, self.run = loop, client, opts, run
        self.wire: _Wire | None = None
        self.session: Session | None = None
        self.stdin: PipeWriter | None = None
        self.readers: dict[int, PipeReader] = {}
        self.resize_buf = b""
        # Sizes may come before the backend starts (WebSocket sends at once): kept for it.
        self.resizes: queue.Queue[TerminalSize] = queue.Queue()
        self.started = self.run_done = self.finished = self.gone = False
        self.outcome: Outcome | None = None
        client.throttled = lambda: self.stdin is not None and self.stdin.backlog() > HIGH_WATER

    # -- from the wire --------------------------------------------------------------------
    def ready(self) -> None:
        """The client's streams are all there: make the pipes and start the backend."""
        if self.started or self.gone:
            return
        self.started = True
        fds: dict[int, int] = {}
        for channel, wanted, child_reads in ((STDIN, self.opts.stdin, True),
                                             (STDOUT, self.opts.stdout, False),
                                             (STDERR, self.opts.stderr, False)):
            if not wanted:
                continue
            r, w = os.pipe2(os.O_CLOEXEC)
            child, ours = (r, w) if child_reads else (w, r)
            os.set_blocking(ours, False)
            fds[channel] = child
            if child_reads:
                self.stdin = PipeWriter(ours)
                self.loop.add(self.stdin)
            else:
                reader = PipeReader(ours, self.client, self._out_data(channel),
                                    self._out_eof(channel))
                self.readers[channel] = reader
                self.loop.add(reader)
        self.session = Session(fds.get(STDIN), fds.get(STDOUT), fds.get(STDERR), self.opts.tty,
                               self.resizes)
        threading.Thread(target=self._run, args=(self.session,), name="streaming-run",
                         daemon=True).start()

    def stdin_data(self, data: bytes) -> None:
        if self.stdin is not None:
            self.stdin.write(data)

    def stdin_eof(self) -> None:
        if self.stdin is not None:
            self.stdin.close()

    def resize(self, data: bytes) -> None:
        """JSON TerminalSize objects, one after another, split anywhere."""
        self.resize_buf += data
        decoder = json.JSONDecoder()
        text = self.resize_buf.decode("utf-8", "replace")
        pos = 0
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            try:
                size, end = decoder.raw_decode(text, pos)
            except json.JSONDecodeError:
                break
            pos = end
            try:
                terminal = TerminalSize(int(size.get("Width") or 0), int(size.get("Height") or 0))
            except (AttributeError, TypeError, ValueError):
                continue    # not a TerminalSize: the kubelet's decoder would stop; we skip it
            self.resizes.put(terminal)
        self.resize_buf = text[pos:].encode()

    def client_gone(self) -> None:
        """The client closed or dropped the connection: the command loses its stdio."""
        if self.gone:
            return
        self.gone = True
        if self.session is not None:
            self.session.gone.set()
        if self.stdin is not None:
            self.stdin.close()
        for reader in self.readers.values():
            self.loop.remove(reader)
            reader.release()    # the command's writes fail (EPIPE) instead of blocking
        self.client.close_when_flushed()   # a close frame we owe it may still be queued
        self.maybe_stop()

    # -- from the backend and the pipes ------------------------------------------------------
    def _run(self, session: Session) -> None:
        code, error = None, ""
        try:
            code = self.run(session)
        except StreamError as e:
            error = str(e) or "stream error"
        except Exception as e:  # noqa: BLE001 - the client gets the error, the log the trace
            log.exception("streaming backend failed")
            error = str(e) or type(e).__name__
        finally:
            # The backend's ends close as soon as it returns, here, even if the loop is gone.
            for fd in (session.stdin, session.stdout, session.stderr):
                if fd is not None:
                    os.close(fd)
        self.loop.call_soon(lambda: self._run_returned(Outcome(self.opts.command, code, error)))

    def _run_returned(self, outcome: Outcome) -> None:
        self.run_done, self.outcome = True, outcome
        self._maybe_finish()
        self.maybe_stop()

    def _out_data(self, channel: int) -> Callable[[bytes], None]:
        return lambda data: self.wire.output(channel, data)

    def _out_eof(self, channel: int) -> Callable[[], None]:
        def eof() -> None:
            self.wire.end_output(channel)
            self._maybe_finish()
        return eof

    def _maybe_finish(self) -> None:
        if (self.run_done and not self.finished and not self.gone
                and all(reader.done for reader in self.readers.values())):
            self.finished = True
            self.wire.finish(self.outcome)
            self.client.close_when_flushed()

    def maybe_stop(self) -> None:
        # Over when the backend returned and the client is closed (or gone).
        if (self.run_done or not self.started) and self.client.closed:
            self.loop.stop()

    def creation_timeout(self) -> None:
        if not self.started:
            log.warning("timed out waiting for client to create streams")
            self.client_gone()

    def close(self) -> None:
        for end in [self.stdin, *self.readers.values()]:
            if end is not None:
                self.loop.remove(end)
                end.release()


class _SpdyWire:
    """remotecommand over SPDY: one stream per channel, named by its streamType header."""

    def __init__(self, core: _Session, opts: Options, protocol: str) -> None:
        self.core, self.version = core, _version(protocol)
        self.conn = spdy.ServerConnection(send=core.client.send, on_stream=lambda stream: True,
                                          accepted=self._stream, on_data=self._data,
                                          on_fin=self._fin, on_reset=self._fin,
                                          on_goaway=core.client_gone)
        self.expected = {ERROR} | {ch for ch, wanted in ((STDIN, opts.stdin), (STDOUT, opts.stdout),
                                                         (STDERR, opts.stderr)) if wanted}
        if opts.tty and self.version >= 3:
            self.expected.add(RESIZE)
        self.streams: dict[int, spdy.Stream] = {}

    def receive(self, data: bytes) -> None:
        self.conn.receive_or_drop(data, "exec")

    def _stream(self, stream: spdy.Stream) -> None:
        channel = _STREAM_TYPES.get(spdy.header(stream.headers, "streamType"))
        if channel is None or channel not in self.expected or channel in self.streams:
            log.warning("unexpected stream type %r", spdy.header(stream.headers, "streamType"))
            return
        self.streams[channel] = stream
        if set(self.streams) == self.expected:
            if self.version == 1 and STDIN in self.streams:
                self.conn.close_stream(self.streams[STDIN])   # what v1 kubelets do
            self.core.ready()

    def _channel(self, stream: spdy.Stream) -> int | None:
        return next((ch for ch, s in self.streams.items() if s is stream), None)

    def _data(self, stream: spdy.Stream, data: bytes) -> None:
        channel = self._channel(stream)
        if channel == STDIN:
            self.core.stdin_data(data)
        elif channel == RESIZE:
            self.core.resize(data)

    def _fin(self, stream: spdy.Stream) -> None:
        if self._channel(stream) == STDIN:
            self.core.stdin_eof()

    def output(self, channel: int, data: bytes) -> None:
        self.conn.write(self.streams[channel], data)

    def end_output(self, channel: int) -> None:
        self.conn.close_stream(self.streams[channel])

    def finish(self, outcome: Outcome) -> None:
        error = self.streams[ERROR]
        self.conn.write(error, outcome.json() if self.version >= 4 else outcome.text())
        for stream in self.streams.values():
            self.conn.close_stream(stream)
        self.conn.goaway()


class _WebSocketWire:
    """remotecommand over WebSocket: one message per write, its first byte the channel."""

    def __init__(self, core: _Session, opts: Options, protocol: str) -> None:
        self.core, self.opts = core, opts
        self.version = _version(protocol)
        self.channels = Channels.of(protocol)
        self.ws = websocket.ServerWebSocket(send=core.client.send, on_message=self._message,
                                            on_close=core.client_gone)

    def receive(self, data: bytes) -> None:
        self.ws.receive(data)

    def start(self) -> None:
        # An empty message on the lowest writable channel tells the client the streams are up.
        self.output(STDOUT if self.opts.stdout else STDERR if self.opts.stderr else ERROR, b"")
        self.core.ready()

    def _message(self, payload: bytes, text: bool) -> None:
        if not payload:
            return
        if self.version >= 5 and payload[0] == CLOSE and not self.channels.base64:
            if payload[1:2] == bytes([STDIN]):
                self.core.stdin_eof()
            return
        parsed = self.channels.parse(payload)
        if parsed is None:
            return
        channel, data = parsed
        if channel == STDIN and self.opts.stdin:
            self.core.stdin_data(data)
        elif channel == RESIZE:
            self.core.resize(data)

    def output(self, channel: int, data: bytes) -> None:
        self.channels.send(self.ws, channel, data)

    def end_output(self, channel: int) -> None:
        pass    # the channel ends with the connection

    def finish(self, outcome: Outcome) -> None:
        body = outcome.json() if self.version >= 4 else outcome.text()
        if body:
            self.output(ERROR, body)
        self.ws.close()


def serve(handler: BaseHTTPRequestHandler, opts: Options, run: Callable[[Session], int | None],
          stream_creation_timeout: float = STREAM_CREATION_TIMEOUT) -> None:
    """Serves one exec or attach on the handler's connection until it is over (see module doc)."""
    agreed = upgrade.negotiate(handler, WEBSOCKET_PROTOCOLS, SPDY_PROTOCOLS)
    if agreed is None:
        return
    early = handover.take_over(handler)
    loop = Loop()
    client = Client(handler.connection, on_data=lambda data: None,
                    on_eof=lambda: core.client_gone(), on_closed=lambda: core.maybe_stop())
    core = _Session(loop, client, opts, run)
    timer = None
    try:
        if agreed.spdy:
            wire = _SpdyWire(core, opts, agreed.protocol)
            client.send(spdy.upgrade_response(agreed.protocol))
            timer = threading.Timer(stream_creation_timeout,
                                    lambda: loop.call_soon(core.creation_timeout))
            timer.daemon = True
            timer.start()
        else:
            wire = _WebSocketWire(core, opts, agreed.protocol)
            if not upgrade.accept(handler, wire.ws, agreed.protocol):
                return
        core.wire = wire
        client.on_data = wire.receive
        if not agreed.spdy:
            wire.start()
        upgrade.run(loop, client, early)
    finally:
        if timer is not None:
            timer.cancel()
        core.close()
        loop.close()
        handover.give_back(handler)
