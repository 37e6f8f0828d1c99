"""The server side of RFC 6455 on a request whose head an HTTP server has already read: the
handshake with subprotocol negotiation, then messages in and out. The framing is wsproto's; this
module adapts it to the streaming loop (bytes in, callbacks out, bytes to send)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message
from typing import Callable

from wsproto import ConnectionType, WSConnection
from wsproto.events import (AcceptConnection, BytesMessage, CloseConnection, Ping, Request,
                            TextMessage)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

# A message larger than this (in pieces) closes the connection with 1009: stdin and port data
# come in small messages; only a broken or hostile client sends more.
MAX_MESSAGE = 16 << 20
# What wsstream.IsWebSocketRequest accepts: "upgrade" anywhere in a Connection list.
_CONNECTION_UPGRADE = re.compile(r"(^|.*,\s*)upgrade($|\s*,)")


class HandshakeError(Exception):
    """The request cannot become a WebSocket (bad headers, no common subprotocol)."""


def is_websocket(headers: Message) -> bool:
    return ((headers.get("Upgrade") or "").lower() == "websocket"
            and bool(_CONNECTION_UPGRADE.match((headers.get("Connection") or "").lower())))


def offered_protocols(headers: Message) -> list[str]:
    """The client's subprotocols in its order of preference (several headers or a list)."""
    return [p.strip() for value in headers.get_all("Sec-WebSocket-Protocol") or []
            for p in value.split(",") if p.strip()]


def negotiate(offered: list[str], supported: list[str]) -> str:
    """The first offered subprotocol we support (the client's preference wins, as in kube's
    wsstream); "" when the client offered none."""
    if not offered:
        return ""
    for protocol in offered:
        if protocol in supported:
            return protocol
    raise HandshakeError(f"requested protocol(s) are not supported: {offered}; "
                         f"supports {supported}")


@dataclass(eq=False)
class ServerWebSocket:
    """One accepted connection. `on_message(payload, is_text)` gets each whole message,
    `on_close()` the client's close (answered already) or its end of the connection."""
    send: Callable[[bytes], None]
    on_message: Callable[[bytes, bool], None]
    on_close: Callable[[], None]
    _ws: WSConnection = field(default_factory=lambda: WSConnection(ConnectionType.SERVER))
    _parts: list[bytes] = field(default_factory=list)
    _size: int = 0
    closed: bool = False
    _told: bool = False

    def accept(self, headers: Message, path: str, subprotocol: str) -> None:
        """Sends the 101 for the request whose `headers` the HTTP server has parsed."""
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        try:
            self._ws.initiate_upgrade_connection(raw, path)
            if not any(isinstance(event, Request) for event in self._ws.events()):
                raise HandshakeError("not a WebSocket upgrade request")
            self.send(self._ws.send(AcceptConnection(subprotocol=subprotocol or None)))
        except (LocalProtocolError, RemoteProtocolError) as e:
            raise HandshakeError(f"bad WebSocket handshake: {e}") from None

    def receive(self, data: bytes) -> None:
        """Bytes from the client ("" at its EOF)."""
        try:
            self._ws.receive_data(data or None)
            for event in self._ws.events():
                if isinstance(event, (BytesMessage, TextMessage)):
                    chunk = event.data.encode() if isinstance(event, TextMessage) else event.data
                    self._parts.append(chunk)
                    self._size += len(chunk)
                    if self._size > MAX_MESSAGE:
                        self.close(1009)
                        self._gone()
                        return
                    if event.message_finished:
                        self._size = 0
                        payload, self._parts = b"".join(self._parts), []
                        self.on_message(payload, isinstance(event, TextMessage))
                elif isinstance(event, Ping):
                    self.send(self._ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    self._closed_by_client(event)
        except (LocalProtocolError, RemoteProtocolError):
            self._gone()
        if not data:
            self._gone()

    def _closed_by_client(self, event: CloseConnection) -> None:
        if not self.closed:
            self.closed = True
            self.send(self._ws.send(event.response()))
        self._gone()

    def _gone(self) -> None:
        """Tells the owner once that the client is done (closed, gone, or broken)."""
        self.closed = True
        if not self._told:
            self._told = True
            self.on_close()

    def message(self, payload: bytes, text: bool = False) -> None:
        if not self.closed:
            event = TextMessage(payload.decode("ascii")) if text else BytesMessage(payload)
            self.send(self._ws.send(event))

    def close(self, code: int = 1000) -> None:
        """Our close frame (the client answers; we do not wait for it)."""
        if not self.closed:
            self.closed = True
            self.send(self._ws.send(CloseConnection(code=code)))
