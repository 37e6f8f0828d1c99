"""What exec/attach and port-forward do alike with a request to upgrade: agree with the client
on a stream protocol (WebSocket or SPDY) or answer why not, complete a WebSocket handshake, and
serve the taken-over connection on its Loop until the loop stops."""
from __future__ import annotations

from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from cri.streaming import handover, spdy, websocket
from cri.streaming.loop import Client, Loop


@dataclass(frozen=True)
class Upgrade:
    protocol: str
    spdy: bool      # else WebSocket


def negotiate(handler: BaseHTTPRequestHandler, websocket_protocols: list[str],
              spdy_protocols: list[str]) -> Upgrade | None:
    """The protocol both sides speak; None once the handler has answered a request that cannot
    be upgraded (400, or 403 naming our SPDY protocols as httpstream.Handshake does)."""
    if websocket.is_websocket(handler.headers):
        try:
            return Upgrade(websocket.negotiate(websocket.offered_protocols(handler.headers),
                                               websocket_protocols), spdy=False)
        except websocket.HandshakeError as e:
            handover.reject(handler, 400, str(e))
            return None
    if spdy.is_upgrade(handler.headers):
        try:
            return Upgrade(spdy.negotiate(handler.headers, spdy_protocols), spdy=True)
        except spdy.NegotiationError as e:
            handover.refuse_protocol(handler, str(e), spdy_protocols)
            return None
    handover.reject(handler, 400, "unable to upgrade: missing upgrade headers in request")
    return None


def accept(handler: BaseHTTPRequestHandler, ws: websocket.ServerWebSocket,
           protocol: str) -> bool:
    """Answers the WebSocket handshake on the taken-over connection; False once a handshake
    that fails has been answered with 400 instead."""
    try:
        ws.accept(handler.headers, handler.path, protocol)
    except websocket.HandshakeError as e:
        handover.give_back(handler)
        handover.reject(handler, 400, str(e))
        return False
    return True


def run(loop: Loop, client: Client, early: bytes) -> None:
    """Serves the client's connection until the loop stops, starting with the bytes the HTTP
    server had read past the request head."""
    loop.add(client)
    if early:
        client.on_data(early)
    loop.run()
