"""kube's channel framing over WebSocket, which exec/attach and port-forward share: the first
byte of each message names its channel; the base64 forms (base64.channel.k8s.io and the like)
write that byte as an ASCII digit and the data base64-encoded, in a text message."""
from __future__ import annotations

import base64
from dataclasses import dataclass

from cri.streaming import websocket


@dataclass(frozen=True)
class Channels:
    base64: bool

    @classmethod
    def of(cls, protocol: str) -> Channels:
        """The framing the negotiated subprotocol names."""
        return cls("base64." in protocol)

    def send(self, ws: websocket.ServerWebSocket, channel: int, data: bytes) -> None:
        if self.base64:
            ws.message(bytes([ord("0") + channel]) + base64.b64encode(data), text=True)
        else:
            ws.message(bytes([channel]) + data)

    def parse(self, payload: bytes) -> tuple[int, bytes] | None:
        """(channel, data) of a message; None for an empty one, or base64 that does not
        decode."""
        if not payload:
            return None
        channel, data = payload[0], payload[1:]
        if self.base64:
            channel -= ord("0")
            try:
                data = base64.b64decode(data, validate=True)
            except ValueError:
                return None
        return channel, data
