"""SPDY/3.1 framing and header compression against known bytes, the server side of a SPDY
connection, and the parsing of the streaming requests' options and statuses."""
from __future__ import annotations

import hashlib
import struct
import zlib

import pytest

from cri.streaming import portforward, remotecommand, spdy
from cri.streaming.status import Outcome


def test_dictionary_is_spdy3s():
    # The sha256 of headerDictionary in golang.org/x/net/spdy (and moby/spdystream's copy).
    assert len(spdy.DICTIONARY) == 1423
    assert hashlib.sha256(spdy.DICTIONARY).hexdigest() == (
        "51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02")


@pytest.mark.parametrize("frame, wire", [
    (spdy.DataFrame(3, b"abc", fin=True), "00000003 01000003 616263"),
    (spdy.DataFrame(5, b""), "00000005 00000000"),
    (spdy.RstStream(3, spdy.RST_CANCEL), "80030003 00000008 00000003 00000005"),
    (spdy.Settings(((0, 4, 100), (1, 7, 65536))),
     "80030004 00000014 00000002 00000004 00000064 01000007 00010000"),
    (spdy.Ping(1), "80030006 00000004 00000001"),
    (spdy.GoAway(7), "80030007 00000008 00000007 00000000"),
    (spdy.WindowUpdate(1, 1000), "80030009 00000008 00000001 000003e8"),
])
def test_frames_known_bytes(frame, wire):
    expected = bytes.fromhex(wire.replace(" ", ""))
    assert spdy.Framer().encode(frame) == expected
    assert spdy.Framer().feed(expected) == [frame]


def test_syn_stream_header_block_is_zlib_with_the_dictionary():
    wire = spdy.Framer().encode(spdy.SynStream(1, {"streamType": ["error"]}, fin=True, priority=2))
    version, kind, flags_length, sid, assoc, prio, slot = struct.unpack(">HHIIIBB", wire[:18])
    assert (version, kind) == (0x8003, 1)
    assert (flags_length >> 24, flags_length & 0xFFFFFF) == (spdy.FLAG_FIN, len(wire) - 8)
    assert (sid, assoc, prio, slot) == (1, 0, 2 << 5, 0)
    block = zlib.decompressobj(zdict=spdy.DICTIONARY).decompress(wire[18:])
    # Lowercase names on the wire, 32-bit counts and lengths (SPDY/3).
    assert block == b"\x00\x00\x00\x01" b"\x00\x00\x00\x0astreamtype" b"\x00\x00\x00\x05error"


def test_header_compression_is_one_stream_per_direction():
    sender, receiver = spdy.Framer(), spdy.Framer()
    frames = [spdy.SynStream(1, {"streamtype": ["error"]}),
              spdy.SynStream(3, {"streamtype": ["data"], "port": ["80"], "requestid": ["0"]}),
              spdy.HeadersFrame(3, {"multi": ["a", "b"]}, fin=True)]
    wire = b"".join(sender.encode(f) for f in frames)
    # The second block refers back to the first: a fresh decompressor cannot read it alone.
    second = sender.encode(spdy.SynReply(5, {"streamtype": ["error"]}))
    with pytest.raises(spdy.ProtocolError):
        spdy.Framer().feed(second)
    assert receiver.feed(wire) == frames
    assert receiver.feed(second) == [spdy.SynReply(5, {"streamtype": ["error"]})]


def test_feed_byte_by_byte():
    sender, receiver = spdy.Framer(), spdy.Framer()
    frames = [spdy.SynStream(1, {"streamtype": ["stdout"]}), spdy.DataFrame(1, b"x" * 300),
              spdy.Ping(3), spdy.DataFrame(1, b"", fin=True)]
    wire = b"".join(sender.encode(f) for f in frames)
    got = []
    for i in range(len(wire)):
        got += receiver.feed(wire[i:i + 1])
    assert got == frames


def test_uppercase_header_names_are_read_lowercase():
    raw = struct.pack(">II", 1, 10) + b"streamType" + struct.pack(">I", 5) + b"stdin"
    compressor = zlib.compressobj(zdict=spdy.DICTIONARY)
    block = compressor.compress(raw) + compressor.flush(zlib.Z_SYNC_FLUSH)
    body = struct.pack(">IIBB", 1, 0, 0, 0) + block
    wire = struct.pack(">HHI", 0x8003, 1, len(body)) + body
    (frame,) = spdy.Framer().feed(wire)
    assert spdy.header(frame.headers, "streamType") == "stdin"


def test_broken_input():
    with pytest.raises(spdy.ProtocolError, match="version 2"):
        spdy.Framer().feed(bytes.fromhex("80020006 00000004 00000001".replace(" ", "")))
    with pytest.raises(spdy.ProtocolError, match="compression"):
        spdy.Framer().feed(bytes.fromhex("80030002 00000008 00000001 deadbeef".replace(" ", "")))
    # Control frames of unknown types are skipped, as SPDY/3 says.
    assert spdy.Framer().feed(bytes.fromhex("8003000a 00000002 abcd 80030006 00000004 00000009"
                                            .replace(" ", ""))) == [spdy.Ping(9)]


class Peer:
    """A server connection with its events recorded, driven by a client-side framer."""

    def __init__(self, accept=lambda stream: True) -> None:
        self.sent = bytearray()
        self.events: list[tuple] = []
        self.conn = spdy.ServerConnection(
            send=self.sent.extend, on_stream=accept,
            accepted=lambda s: self.events.append(("stream", s.id, dict(s.headers))),
            on_data=lambda s, d: self.events.append(("data", s.id, d)),
            on_fin=lambda s: self.events.append(("fin", s.id)),
            on_reset=lambda s: self.events.append(("reset", s.id)),
            on_goaway=lambda: self.events.append(("goaway",)))
        self.client = spdy.Framer()
        self.client_reader = spdy.Framer()

    def send(self, *frames: spdy.Frame) -> list[spdy.Frame]:
        self.conn.receive(b"".join(self.client.encode(f) for f in frames))
        replies = self.client_reader.feed(bytes(self.sent))
        self.sent.clear()
        return replies


def test_server_connection_replies_echoes_and_refuses():
    peer = Peer()
    replies = peer.send(spdy.SynStream(1, {"streamtype": ["stdin"]}),
                        spdy.DataFrame(1, b"input"), spdy.DataFrame(1, b"", fin=True),
                        spdy.Ping(5), spdy.Settings(((0, 7, 1 << 20),)), spdy.WindowUpdate(1, 4096))
    # A reply per stream; the client's (odd) ping comes back; SETTINGS and WINDOW_UPDATE are
    # taken silently (spdystream has no flow control to honour).
    assert replies == [spdy.SynReply(1, {}), spdy.Ping(5)]
    assert peer.events == [("stream", 1, {"streamtype": ["stdin"]}), ("data", 1, b"input"),
                           ("fin", 1)]
    # Stream IDs from the client are odd and increasing.
    assert peer.send(spdy.SynStream(2, {}), spdy.SynStream(1, {})) == [
        spdy.RstStream(2, spdy.RST_PROTOCOL_ERROR), spdy.RstStream(1, spdy.RST_PROTOCOL_ERROR)]
    stream = peer.conn.streams[1]
    peer.conn.write(stream, b"out")
    peer.conn.close_stream(stream)
    peer.conn.write(stream, b"after FIN is dropped")
    peer.conn.goaway()
    assert peer.send() == [spdy.DataFrame(1, b"out"), spdy.DataFrame(1, b"", fin=True),
                           spdy.GoAway(1)]

    refusing = Peer(accept=lambda stream: False)
    assert refusing.send(spdy.SynStream(1, {"port": ["x"]})) == [spdy.RstStream(1, spdy.RST_CANCEL)]
    assert refusing.events == []


def test_server_connection_reset_and_goaway():
    peer = Peer()
    peer.send(spdy.SynStream(1, {}), spdy.RstStream(1, spdy.RST_CANCEL), spdy.DataFrame(1, b"late"),
              spdy.GoAway(0))
    assert peer.events == [("stream", 1, {}), ("reset", 1), ("goaway",)]


def test_remotecommand_options():
    assert remotecommand.options("command=ls&command=-l&stdout=1&stderr=true") == (
        remotecommand.Options(stdin=False, stdout=True, stderr=True, tty=False,
                              command=("ls", "-l")))
    # A terminal has one output stream: stderr is dropped, as the kubelet does.
    assert remotecommand.options("/exec/ns/pod/c?command=sh&stdin=1&stderr=1&tty=1") == (
        remotecommand.Options(stdin=True, stdout=False, stderr=False, tty=True, command=("sh",)))
    assert remotecommand.options("stdin=true&command=ignored", exec_=False).command == ()
    with pytest.raises(remotecommand.OptionsError,
                       match="^you must specify at least 1 of stdin, stdout, stderr$"):
        remotecommand.options("command=ls&stdout=0&tty=1")
    with pytest.raises(remotecommand.OptionsError, match="at least one command"):
        remotecommand.options("stdout=1")


def test_port_forward_ports():
    assert portforward.ports("port=80&port=8080,9090") == [80, 8080, 9090]
    assert portforward.ports("ports=5432") == [5432]
    for query, message in (("port=0", 'port "0" must be > 0'),
                           ("port=http", 'unable to parse "http" as a port'),
                           ("port=70000", 'unable to parse "70000" as a port'),
                           ("port=", 'query parameter "port" cannot be empty')):
        with pytest.raises(portforward.PortsError, match=message):
            portforward.ports(query)


def test_statuses():
    assert Outcome(("ls",), 0).json() == b'{"metadata":{},"status":"Success"}'
    assert Outcome(("ls",), 0).text() == b""
    assert Outcome(()).json() == b'{"metadata":{},"status":"Success"}'
    assert Outcome(("ls", "/x"), 2).text() == (
        b"command terminated with non-zero exit code: error executing command [ls /x], exit code 2")
    assert Outcome(("ls",), None, "container gone").json() == (
        b'{"metadata":{},"status":"Failure","message":"Internal error occurred: error executing '
        b'command in container: container gone","reason":"InternalError","details":{"causes":'
        b'[{"message":"error executing command in container: container gone"}]},"code":500}')
    assert Outcome((), None, "no shim").text() == (
        b"Internal error occurred: error attaching to container: no shim")
