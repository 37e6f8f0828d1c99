"""SPDY/3.1 as kubectl, client-go and the kubelet speak it (moby/spdystream over the framer of
golang.org/x/net/spdy): the frames, the zlib header compression, and the server side of a
connection, where the client opens every stream and the server replies to each.

Header blocks are one zlib stream per direction for the whole connection, primed with SPDY/3's
dictionary; each block ends with a sync flush so that the peer can decode it at once. Names go
lowercase on the wire. Flow control: spdystream neither sends WINDOW_UPDATE nor honours one, so
a peer that enforced the 64 KiB initial window would stall; we accept SETTINGS and WINDOW_UPDATE
and send neither, as the kubelet does."""
from __future__ import annotations

import logging
import struct
import zlib
from dataclasses import dataclass, field
from email.message import Message
from typing import Callable

log = logging.getLogger(__name__)

VERSION = 3
FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02

SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS = 1, 2, 3, 4
PING, GOAWAY, HEADERS, WINDOW_UPDATE = 6, 7, 8, 9

RST_PROTOCOL_ERROR, RST_CANCEL = 1, 5
GOAWAY_OK = 0

MAX_FRAME = 1 << 24              # the 24-bit length field
MAX_HEADER_BLOCK = 1 << 20       # decompressed; a peer sending more is broken or hostile


def _dictionary() -> bytes:
    """The zlib dictionary of SPDY/3 (draft-mbelshe-httpbis-spdy-00, 2.6.10.1): length-prefixed
    header names and values, then a run of common text."""
    words = (
        "options head post put delete trace accept accept-charset accept-encoding "
        "accept-language accept-ranges age allow authorization cache-control connection "
        "content-base content-encoding content-language content-length content-location "
        "content-md5 content-range content-type date etag expect expires from host if-match "
        "if-modified-since if-none-match if-range if-unmodified-since last-modified location "
        "max-forwards pragma proxy-authenticate proxy-authorization range referer retry-after "
        "server te trailer transfer-encoding upgrade user-agent vary via warning "
        "www-authenticate method get status").split() + ["200 OK"] + [
        "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"]
    prefixed = b"".join(struct.pack(">I", len(w)) + w.encode() for w in words)
    tail = (
        "100101201202205206300302303304305306307402405406407408409410411412413414415416417502"
        "504505203 Non-Authoritative Information204 No Content301 Moved Permanently"
        "400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error"
        "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct "
        "Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,"
        "image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,"
        "publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
    return prefixed + tail.encode()


DICTIONARY = _dictionary()

Headers = dict[str, list[str]]


class ProtocolError(Exception):
    """The peer broke SPDY framing; the connection cannot go on."""


@dataclass(frozen=True)
class DataFrame:
    stream_id: int
    data: bytes
    fin: bool = False


@dataclass(frozen=True)
class SynStream:
    stream_id: int
    headers: Headers
    fin: bool = False
    associated_id: int = 0
    priority: int = 0
    unidirectional: bool = False


@dataclass(frozen=True)
class SynReply:
    stream_id: int
    headers: Headers
    fin: bool = False


@dataclass(frozen=True)
class HeadersFrame:
    stream_id: int
    headers: Headers
    fin: bool = False


@dataclass(frozen=True)
class RstStream:
    stream_id: int
    status: int


@dataclass(frozen=True)
class Settings:
    entries: tuple[tuple[int, int, int], ...] = ()   # (flags, id, value)


@dataclass(frozen=True)
class Ping:
    id: int


@dataclass(frozen=True)
class GoAway:
    last_good_stream_id: int
    status: int = GOAWAY_OK


@dataclass(frozen=True)
class WindowUpdate:
    stream_id: int
    delta: int


Frame = (DataFrame | SynStream | SynReply | HeadersFrame | RstStream | Settings | Ping | GoAway
         | WindowUpdate)


def header(headers: Headers, name: str) -> str:
    """The first value of a header, by case-insensitive name ("" when absent)."""
    values = headers.get(name.lower())
    return values[0] if values else ""


def _encode_block(headers: Headers) -> bytes:
    out = [struct.pack(">I", len(headers))]
    for name, values in headers.items():
        key = name.lower().encode()
        value = "\0".join(values).encode()
        out += [struct.pack(">I", len(key)), key, struct.pack(">I", len(value)), value]
    return b"".join(out)


def _decode_block(block: bytes) -> Headers:
    headers: Headers = {}
    try:
        (count,), pos = struct.unpack_from(">I", block), 4
        for _ in range(count):
            (n,) = struct.unpack_from(">I", block, pos)
            name = block[pos + 4:pos + 4 + n].decode().lower()
            pos += 4 + n
            (n,) = struct.unpack_from(">I", block, pos)
            value = block[pos + 4:pos + 4 + n].decode()
            pos += 4 + n
            headers.setdefault(name, []).extend(value.split("\0"))
    except (struct.error, UnicodeDecodeError) as e:
        raise ProtocolError(f"bad header block: {e}") from None
    if pos != len(block):
        raise ProtocolError("bad header block: trailing bytes")
    return headers


class Framer:
    """Encodes and decodes the frames of one connection, with its two zlib streams."""

    def __init__(self) -> None:
        self._compress = zlib.compressobj(zlib.Z_BEST_COMPRESSION, zdict=DICTIONARY)
        self._decompress = zlib.decompressobj(zdict=DICTIONARY)
        self._buf = bytearray()

    def _compress_block(self, headers: Headers) -> bytes:
        block = self._compress.compress(_encode_block(headers))
        return block + self._compress.flush(zlib.Z_SYNC_FLUSH)

    def _decompress_block(self, data: bytes) -> Headers:
        try:
            block = self._decompress.decompress(data, MAX_HEADER_BLOCK)
        except zlib.error as e:
            raise ProtocolError(f"bad header compression: {e}") from None
        if self._decompress.unconsumed_tail:
            raise ProtocolError("header block too large")
        return _decode_block(block)

    def encode(self, frame: Frame) -> bytes:
        if isinstance(frame, DataFrame):
            flags_length = (FLAG_FIN if frame.fin else 0) << 24 | len(frame.data)
            return struct.pack(">II", frame.stream_id & 0x7FFFFFFF, flags_length) + frame.data
        flags = 0
        if isinstance(frame, SynStream):
            flags = ((FLAG_FIN if frame.fin else 0)
                     | (FLAG_UNIDIRECTIONAL if frame.unidirectional else 0))
            body = struct.pack(">IIBB", frame.stream_id, frame.associated_id,
                               (frame.priority & 7) << 5, 0) + self._compress_block(frame.headers)
            kind = SYN_STREAM
        elif isinstance(frame, (SynReply, HeadersFrame)):
            flags = FLAG_FIN if frame.fin else 0
            body = struct.pack(">I", frame.stream_id) + self._compress_block(frame.headers)
            kind = SYN_REPLY if isinstance(frame, SynReply) else HEADERS
        elif isinstance(frame, RstStream):
            body, kind = struct.pack(">II", frame.stream_id, frame.status), RST_STREAM
        elif isinstance(frame, Settings):
            body = struct.pack(">I", len(frame.entries)) + b"".join(
                struct.pack(">II", f << 24 | i, v) for f, i, v in frame.entries)
            kind = SETTINGS
        elif isinstance(frame, Ping):
            body, kind = struct.pack(">I", frame.id), PING
        elif isinstance(frame, GoAway):
            body, kind = struct.pack(">II", frame.last_good_stream_id, frame.status), GOAWAY
        elif isinstance(frame, WindowUpdate):
            body, kind = struct.pack(">II", frame.stream_id, frame.delta), WINDOW_UPDATE
        else:
            raise TypeError(f"not a SPDY frame: {frame!r}")
        return struct.pack(">HHI", 0x8000 | VERSION, kind, flags << 24 | len(body)) + body

    def feed(self, data: bytes) -> list[Frame]:
        """The frames completed by `data`; raises ProtocolError on a broken stream."""
        self._buf += data
        frames = []
        while len(self._buf) >= 8:
            word, flags_len = struct.unpack_from(">II", self._buf)
            length = flags_len & 0xFFFFFF
            if len(self._buf) < 8 + length:
                break
            flags = flags_len >> 24
            body = bytes(self._buf[8:8 + length])
            del self._buf[:8 + length]
            if word & 0x80000000:
                frame = self._control(word >> 16 & 0x7FFF, word & 0xFFFF, flags, body)
                if frame is not None:
                    frames.append(frame)
            else:
                frames.append(DataFrame(word & 0x7FFFFFFF, body, bool(flags & FLAG_FIN)))
        return frames

    def _control(self, version: int, kind: int, flags: int, body: bytes) -> Frame | None:
        if version != VERSION:
            raise ProtocolError(f"unsupported SPDY version {version}")
        fin = bool(flags & FLAG_FIN)
        try:
            if kind == SYN_STREAM:
                sid, assoc, prio, _slot = struct.unpack_from(">IIBB", body)
                return SynStream(sid & 0x7FFFFFFF, self._decompress_block(body[10:]), fin,
                                 assoc & 0x7FFFFFFF, prio >> 5, bool(flags & FLAG_UNIDIRECTIONAL))
            if kind in (SYN_REPLY, HEADERS):
                (sid,) = struct.unpack_from(">I", body)
                cls = SynReply if kind == SYN_REPLY else HeadersFrame
                return cls(sid & 0x7FFFFFFF, self._decompress_block(body[4:]), fin)
            if kind == RST_STREAM:
                sid, status = struct.unpack(">II", body)
                return RstStream(sid & 0x7FFFFFFF, status)
            if kind == SETTINGS:
                (count,) = struct.unpack_from(">I", body)
                entries = tuple((fi >> 24, fi & 0xFFFFFF, v)
                                for fi, v in struct.iter_unpack(">II", body[4:4 + 8 * count]))
                return Settings(entries)
            if kind == PING:
                return Ping(struct.unpack(">I", body)[0])
            if kind == GOAWAY:
                sid, status = struct.unpack(">II", body)
                return GoAway(sid & 0x7FFFFFFF, status)
            if kind == WINDOW_UPDATE:
                sid, delta = struct.unpack(">II", body)
                return WindowUpdate(sid & 0x7FFFFFFF, delta & 0x7FFFFFFF)
        except struct.error:
            raise ProtocolError(f"malformed control frame of type {kind}") from None
        return None    # SPDY/3 says: ignore control frames of unknown types


@dataclass(eq=False)
class Stream:
    """A stream the client opened: its headers and how far each side is."""
    id: int
    headers: Headers
    remote_fin: bool = False     # the client sent FIN: no more data from it
    local_fin: bool = False      # we sent FIN
    reset: bool = False


@dataclass(eq=False)
class ServerConnection:
    """The server side of one SPDY connection over `send` (bytes to the client).

    The client opens streams; `on_stream(stream)` says whether to accept one (from its headers):
    an accepted stream gets its SYN_REPLY at once, then `accepted(stream)` is called, a refused
    one a RST_STREAM. `on_data(stream, data)` and `on_fin(stream)` follow; `on_reset(stream)`
    when the client resets one; `on_goaway()` when the client closes the connection."""
    send: Callable[[bytes], None]
    on_stream: Callable[[Stream], bool]
    accepted: Callable[[Stream], None]
    on_data: Callable[[Stream, bytes], None]
    on_fin: Callable[[Stream], None]
    on_reset: Callable[[Stream], None] = lambda stream: None
    on_goaway: Callable[[], None] = lambda: None
    framer: Framer = field(default_factory=Framer)
    streams: dict[int, Stream] = field(default_factory=dict)
    last_stream_id: int = 0
    gone_away: bool = False

    def receive(self, data: bytes) -> None:
        for frame in self.framer.feed(data):
            self._handle(frame)

    def receive_or_drop(self, data: bytes, what: str) -> None:
        """receive, for a server that gives up on a client breaking the protocol: logged (as a
        `what` client), then taken as the client gone (on_goaway)."""
        try:
            self.receive(data)
        except ProtocolError as e:
            log.warning("SPDY %s client: %s", what, e)
            self.on_goaway()

    def _handle(self, frame: Frame) -> None:
        if isinstance(frame, SynStream):
            # Client streams are odd and increase; spdystream drops others silently too.
            if frame.stream_id % 2 == 0 or frame.stream_id <= self.last_stream_id or self.gone_away:
                self._write(RstStream(frame.stream_id, RST_PROTOCOL_ERROR))
                return
            self.last_stream_id = frame.stream_id
            stream = Stream(frame.stream_id, frame.headers)
            if not self.on_stream(stream):
                # Refused, as the kubelet's stream handler refuses one: a reset, no reply.
                self._write(RstStream(stream.id, RST_CANCEL))
                return
            self.streams[stream.id] = stream
            self._write(SynReply(stream.id, {}))
            self.accepted(stream)
            if frame.fin:
                self._remote_fin(stream)
        elif isinstance(frame, DataFrame):
            stream = self.streams.get(frame.stream_id)
            if stream is None or stream.reset:
                return
            if frame.data and not stream.remote_fin:
                self.on_data(stream, frame.data)
            if frame.fin:
                self._remote_fin(stream)
        elif isinstance(frame, HeadersFrame):
            stream = self.streams.get(frame.stream_id)
            if stream is not None and frame.fin:
                self._remote_fin(stream)
        elif isinstance(frame, RstStream):
            stream = self.streams.get(frame.stream_id)
            if stream is not None and not stream.reset:
                stream.reset = stream.remote_fin = stream.local_fin = True
                self.on_reset(stream)
        elif isinstance(frame, Ping):
            if frame.id % 2 == 1:     # the client's (odd) pings are echoed; ours we never send
                self._write(frame)
        elif isinstance(frame, GoAway):
            self.on_goaway()
        # SETTINGS, WINDOW_UPDATE and SYN_REPLY (we open no streams): nothing to do.

    def _remote_fin(self, stream: Stream) -> None:
        if not stream.remote_fin:
            stream.remote_fin = True
            self.on_fin(stream)

    def _write(self, frame: Frame) -> None:
        self.send(self.framer.encode(frame))

    def write(self, stream: Stream, data: bytes, fin: bool = False) -> None:
        """Data on a stream, split into frames; nothing after our FIN or a reset."""
        if stream.local_fin:
            return
        view = memoryview(data)
        while len(view) > MAX_FRAME - 1:
            self._write(DataFrame(stream.id, bytes(view[:MAX_FRAME - 1])))
            view = view[MAX_FRAME - 1:]
        if view or fin:
            self._write(DataFrame(stream.id, bytes(view), fin))
        stream.local_fin = fin

    def close_stream(self, stream: Stream) -> None:
        """Our half-close: an empty DATA frame with FIN, as spdystream's Stream.Close."""
        self.write(stream, b"", fin=True)

    def reset(self, stream: Stream, status: int = RST_CANCEL) -> None:
        if not stream.reset:
            stream.reset = stream.local_fin = True
            self._write(RstStream(stream.id, status))

    def goaway(self) -> None:
        if not self.gone_away:
            self.gone_away = True
            self._write(GoAway(self.last_stream_id))


def upgrade_response(protocol: str) -> bytes:
    """The 101 that switches an HTTP/1.1 connection to SPDY/3.1 (k8s.io/apimachinery
    httpstream/spdy's ResponseUpgrader); `protocol` is the negotiated X-Stream-Protocol-Version,
    "" when the client asked for none."""
    lines = ["HTTP/1.1 101 Switching Protocols", "Connection: Upgrade", "Upgrade: SPDY/3.1"]
    if protocol:
        lines.append(f"X-Stream-Protocol-Version: {protocol}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class NegotiationError(Exception):
    """No X-Stream-Protocol-Version in common; the message is httpstream.Handshake's."""


def is_upgrade(headers: Message) -> bool:
    """The request asks to switch to SPDY/3.1 (Connection: Upgrade, Upgrade: SPDY/3.1)."""
    connection = [v.strip().lower() for value in headers.get_all("Connection") or []
                  for v in value.split(",")]
    return "upgrade" in connection and (headers.get("Upgrade") or "").lower() == "spdy/3.1"


def negotiate(headers: Message, supported: list[str]) -> str:
    """The first X-Stream-Protocol-Version the client offers that we support ("" when it
    offers none: the oldest protocol, as the kubelet falls back)."""
    offered = [v.strip() for value in headers.get_all("X-Stream-Protocol-Version") or []
               for v in value.split(",") if v.strip()]
    if not offered:
        return ""
    for protocol in offered:
        if protocol in supported:
            return protocol
    raise NegotiationError("unable to upgrade: unable to negotiate protocol: client supports "
                           f"[{' '.join(offered)}], server accepts [{' '.join(supported)}]")
