"""port-forward as the kubelet's streaming server speaks it, in its three forms:

- SPDY/3.1 (`X-Stream-Protocol-Version: portforward.k8s.io`): for every connection the client
  forwards, it opens an error and a data stream carrying the same `port` and `requestID`
  headers; the pair is one dial.
- WebSocket (`v4.channel.k8s.io`, `v4.base64.channel.k8s.io`, `portforward.k8s.io`, or none):
  the ports come from the query (`port=`, several or comma-separated); port i is channel 2i
  (data, both ways) and 2i+1 (error), and each channel first carries the port as 2 bytes
  little-endian. The connection ends when every port's connection has.
- SPDY tunnelled in WebSocket (subprotocol `SPDY/3.1+portforward.k8s.io`, kubectl >= 1.31): the
  SPDY form, its bytes carried in binary messages.

    portforward.serve(handler, ports_or_query, dial, pod=name, uid=uid)

`dial(port)` is the backend (cri.streaming.backend.Dial), called in a thread of its own per
connection; a StreamError from it reaches the client on the error stream as the kubelet words it:
"error forwarding port 80 to pod <pod>, uid <uid>: <message>"."""
from __future__ import annotations

import logging
import socket
import struct
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Callable, Sequence

from cri.streaming import handover, spdy, upgrade, websocket
from cri.streaming.backend import Dial, StreamError
from cri.streaming.channels import Channels
from cri.streaming.loop import HIGH_WATER, Client, Duplex, Loop, PipeReader, PipeWriter
from cri.streaming.remotecommand import STREAM_CREATION_TIMEOUT

log = logging.getLogger(__name__)

PROTOCOL = "portforward.k8s.io"
TUNNEL_PROTOCOL = "SPDY/3.1+" + PROTOCOL
WEBSOCKET_PROTOCOLS = [TUNNEL_PROTOCOL, "v4.channel.k8s.io", "v4.base64.channel.k8s.io", PROTOCOL]


class PortsError(ValueError):
    """A bad port in the query; the message is the kubelet's."""


def ports(query: str) -> list[int]:
    """The ports of a WebSocket port-forward from its query (`port=`, as the kubelet gets them,
    or `ports=`, as the API server does)."""
    if "?" in query:
        query = query.split("?", 1)[1]
    params = urllib.parse.parse_qs(query, keep_blank_values=True)
    result = []
    for name in ("port", "ports"):
        for value in params.get(name, []):
            if not value:
                raise PortsError(f'query parameter "{name}" cannot be empty')
            for item in value.split(","):
                result.append(_port(item.strip(), value))
    return result


def _port(text: str, whole: str | None = None) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise PortsError(f'unable to parse "{whole or text}" as a port')
    if int(text) < 1:
        raise PortsError(f'port "{whole or text}" must be > 0')
    return int(text)


@dataclass(eq=False)
class _Forward:
    """One forwarded connection: the dial, then bytes both ways until the pod's side ends."""
    loop: Loop
    client: Client
    port: int
    dial: Dial
    error_text: Callable[[int, str], str]
    to_client: Callable[[bytes], None]        # data for the client
    end_client: Callable[[str], None]         # done; the error message ("" when none)
    pending: bytearray = field(default_factory=bytearray)
    client_eof: bool = False
    pump: Duplex | None = None
    sock: socket.socket | None = None
    done: bool = False

    def start(self) -> None:
        threading.Thread(target=self._dial, name=f"port-forward-{self.port}", daemon=True).start()

    def _dial(self) -> None:
        try:
            sock = self.dial(self.port)
        except StreamError as e:
            message = str(e)
            self.loop.call_soon(lambda: self._failed(message))
            return
        except Exception as e:  # noqa: BLE001 - the client gets the message, the log the trace
            log.exception("port-forward dial of port %d failed", self.port)
            message = str(e) or type(e).__name__
            self.loop.call_soon(lambda: self._failed(message))
            return
        self.loop.call_soon(lambda: self._connected(sock))

    def _connected(self, sock: socket.socket) -> None:
        if self.done:       # the client left while we dialled
            sock.close()
            return
        self.sock = sock
        sock.setblocking(False)
        reader = PipeReader(sock.fileno(), self.client, self.to_client, self._remote_eof, sock=sock)
        self.pump = Duplex(reader, PipeWriter(sock.fileno(), sock=sock))
        self.loop.add(self.pump)
        if self.pending:
            self.pump.writer.write(bytes(self.pending))
            self.pending.clear()
        if self.client_eof:
            self.pump.writer.close()

    def _failed(self, message: str) -> None:
        if not self.done:
            self.finish(self.error_text(self.port, message))

    def _remote_eof(self) -> None:
        self.finish("")

    def backlog(self) -> int:
        return self.pump.writer.backlog() if self.pump else len(self.pending)

    def from_client(self, data: bytes) -> None:
        if self.done:
            return
        if self.pump is None:
            self.pending += data
        else:
            self.pump.writer.write(data)

    def client_done(self) -> None:
        """The client sends no more (FIN): the pod's side reads EOF, and may still answer."""
        self.client_eof = True
        if self.pump is not None:
            self.pump.writer.close()

    def finish(self, error: str) -> None:
        if self.done:
            return
        self.done = True
        self.release()
        self.end_client(error)

    def release(self) -> None:
        self.done = True
        if self.pump is not None:
            self.loop.remove(self.pump)
            self.pump = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class _Forwarder:
    """What every form shares: the forwards of one client connection."""

    def __init__(self, loop: Loop, client: Client, dial: Dial, pod: str, uid: str) -> None:
        self.loop, self.client, self.dial = loop, client, dial
        self.pod, self.uid = pod, uid
        self.forwards: list[_Forward] = []
        self.gone = False
        client.throttled = lambda: any(f.backlog() > HIGH_WATER for f in self.forwards)

    def error_text(self, port: int, message: str) -> str:
        return f"error forwarding port {port} to pod {self.pod}, uid {self.uid}: {message}"

    def forward(self, port: int, to_client: Callable[[bytes], None],
                end_client: Callable[[str], None]) -> _Forward:
        fwd = _Forward(self.loop, self.client, port, self.dial, self.error_text, to_client,
                       lambda error: self._ended(fwd, error, end_client))
        self.forwards.append(fwd)
        fwd.start()
        return fwd

    def _ended(self, fwd: _Forward, error: str, end_client: Callable[[str], None]) -> None:
        self.forwards.remove(fwd)
        if not self.gone:
            end_client(error)

    def client_gone(self) -> None:
        if self.gone:
            return
        self.gone = True
        for fwd in list(self.forwards):
            fwd.release()
        self.forwards.clear()
        self.client.close_when_flushed()

    def close(self) -> None:
        for fwd in self.forwards:
            fwd.release()


class _SpdyForwards:
    """The SPDY form: stream pairs by requestID, each pair one forward."""

    def __init__(self, forwarder: _Forwarder, send: Callable[[bytes], None],
                 stream_creation_timeout: float) -> None:
        self.forwarder = forwarder
        self.timeout = stream_creation_timeout
        self.conn = spdy.ServerConnection(send=send, on_stream=self._check, accepted=self._stream,
                                          on_data=self._data, on_fin=self._fin,
                                          on_reset=self._reset, on_goaway=forwarder.client_gone)
        self.pairs: dict[str, dict[str, spdy.Stream]] = {}
        self.by_stream: dict[int, _Forward] = {}
        self.timers: dict[str, threading.Timer] = {}    # of the pairs still incomplete

    def receive(self, data: bytes) -> None:
        self.conn.receive_or_drop(data, "port-forward")

    def _check(self, stream: spdy.Stream) -> bool:
        """Refuses a stream without a valid port and stream type, as the kubelet does."""
        try:
            _port(spdy.header(stream.headers, "port"))
        except PortsError as e:
            log.warning("port-forward stream refused: %s", e)
            return False
        return spdy.header(stream.headers, "streamType") in ("data", "error")

    def _request_id(self, stream: spdy.Stream) -> str:
        request_id = spdy.header(stream.headers, "requestID")
        if request_id:
            return request_id
        # Clients before requestID: the pair's streams are consecutive (error, then data).
        kind = spdy.header(stream.headers, "streamType")
        return str(stream.id if kind == "error" else stream.id - 2)

    def _stream(self, stream: spdy.Stream) -> None:
        request_id = self._request_id(stream)
        kind = spdy.header(stream.headers, "streamType")
        pair = self.pairs.setdefault(request_id, {})
        if not pair:
            timer = threading.Timer(self.timeout, lambda: self.forwarder.loop.call_soon(
                lambda: self._expire(request_id, pair)))
            timer.daemon = True
            timer.start()
            self.timers[request_id] = timer
        if kind in pair:
            message = (f"error processing stream for request {request_id}: "
                       f"{kind} stream already assigned")
            if "error" in pair:
                self.conn.write(pair["error"], message.encode())
            return
        pair[kind] = stream
        if len(pair) == 2:
            del self.pairs[request_id]
            self.timers.pop(request_id).cancel()
            data, error = pair["data"], pair["error"]
            fwd = self.forwarder.forward(
                int(spdy.header(data.headers, "port")),
                lambda chunk: self.conn.write(data, chunk),
                lambda message: self._end(data, error, message))
            self.by_stream[data.id] = fwd
            if data.remote_fin:
                fwd.client_done()

    def _expire(self, request_id: str, pair: dict[str, spdy.Stream]) -> None:
        if self.pairs.get(request_id) is pair:
            del self.pairs[request_id]
            self.timers.pop(request_id, None)
            if "error" in pair:
                message = f"(request={request_id}) timed out waiting for streams"
                self.conn.write(pair["error"], message.encode())
            for stream in pair.values():
                self.conn.close_stream(stream)

    def _end(self, data: spdy.Stream, error: spdy.Stream, message: str) -> None:
        self.by_stream.pop(data.id, None)
        if message:
            self.conn.write(error, message.encode())
        self.conn.close_stream(data)
        self.conn.close_stream(error)

    def _data(self, stream: spdy.Stream, data: bytes) -> None:
        fwd = self.by_stream.get(stream.id)
        if fwd is not None:
            fwd.from_client(data)

    def _fin(self, stream: spdy.Stream) -> None:
        fwd = self.by_stream.get(stream.id)
        if fwd is not None:
            fwd.client_done()

    def _reset(self, stream: spdy.Stream) -> None:
        fwd = self.by_stream.pop(stream.id, None)
        if fwd is not None:
            fwd.release()

    def close(self) -> None:
        for timer in self.timers.values():
            timer.cancel()


class _WebSocketForwards:
    """The WebSocket form: a fixed set of ports, channels 2i and 2i+1."""

    def __init__(self, forwarder: _Forwarder, ws: websocket.ServerWebSocket, protocol: str,
                 port_list: list[int]) -> None:
        self.forwarder, self.ws, self.ports = forwarder, ws, port_list
        self.channels = Channels.of(protocol)
        self.forwards: dict[int, _Forward] = {}
        self.remaining = len(port_list)

    def start(self) -> None:
        for i, port in enumerate(self.ports):
            prefix = struct.pack("<H", port)
            self._send(2 * i, prefix)
            self._send(2 * i + 1, prefix)
        for i, port in enumerate(self.ports):
            self.forwards[2 * i] = self.forwarder.forward(
                port, lambda chunk, ch=2 * i: self._send(ch, chunk),
                lambda message, ch=2 * i + 1: self._end(ch, message))
        if not self.ports:
            self.ws.close()
            self.forwarder.client.close_when_flushed()

    def _send(self, channel: int, data: bytes) -> None:
        self.channels.send(self.ws, channel, data)

    def message(self, payload: bytes, text: bool) -> None:
        parsed = self.channels.parse(payload)
        if parsed is None:
            return
        channel, data = parsed
        fwd = self.forwards.get(channel)
        if fwd is not None and data:
            fwd.from_client(data)

    def _end(self, error_channel: int, message: str) -> None:
        if message:
            self._send(error_channel, message.encode())
        self.remaining -= 1
        if self.remaining == 0:
            self.ws.close()
            self.forwarder.client.close_when_flushed()


def serve(handler: BaseHTTPRequestHandler, ports_or_query: Sequence[int] | str, dial: Dial,
          pod: str = "", uid: str = "",
          stream_creation_timeout: float = STREAM_CREATION_TIMEOUT) -> None:
    """Serves one port-forward on the handler's connection until the client leaves (see the
    module doc). `ports_or_query` are the WebSocket form's ports, or the request's query string
    to take them from; the SPDY forms name their ports per stream."""
    agreed = upgrade.negotiate(handler, WEBSOCKET_PROTOCOLS, [PROTOCOL])
    if agreed is None:
        return
    if agreed.spdy:
        mode = "spdy"
    else:
        try:
            port_list = (ports(ports_or_query) if isinstance(ports_or_query, str)
                         else list(ports_or_query))
        except PortsError as e:
            handover.reject(handler, 400, str(e))
            return
        if agreed.protocol != TUNNEL_PROTOCOL and not port_list:
            handover.reject(handler, 400, 'query parameter "port" is required')
            return
        mode = "tunnel" if agreed.protocol == TUNNEL_PROTOCOL else "websocket"

    early = handover.take_over(handler)
    loop = Loop()
    client = Client(handler.connection, on_data=lambda data: None,
                    on_eof=lambda: forwarder.client_gone(), on_closed=loop.stop)
    forwarder = _Forwarder(loop, client, dial, pod, uid)
    spdy_forwards: _SpdyForwards | None = None
    try:
        if mode == "spdy":
            spdy_forwards = _SpdyForwards(forwarder, client.send, stream_creation_timeout)
            client.send(spdy.upgrade_response(agreed.protocol))
            client.on_data = spdy_forwards.receive
        else:
            ws = websocket.ServerWebSocket(send=client.send, on_message=lambda payload, text: None,
                                           on_close=forwarder.client_gone)
            if mode == "tunnel":
                tunnel = _SpdyForwards(forwarder, ws.message, stream_creation_timeout)
                ws.on_message = lambda payload, text: tunnel.receive(payload)
                spdy_forwards = tunnel
            else:
                ws_forwards = _WebSocketForwards(forwarder, ws, agreed.protocol, port_list)
                ws.on_message = ws_forwards.message
            if not upgrade.accept(handler, ws, agreed.protocol):
                return
            client.on_data = ws.receive
            if mode == "websocket":
                ws_forwards.start()
        upgrade.run(loop, client, early)
    finally:
        if spdy_forwards is not None:
            spdy_forwards.close()
        forwarder.close()
        loop.close()
        handover.give_back(handler)
