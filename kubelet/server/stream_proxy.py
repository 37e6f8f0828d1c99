"""The kubelet's /exec, /attach and /portForward when the runtime is remote: the request (its
upgrade headers, the client's stream protocols) goes on to the URL the runtime's Exec, Attach or
PortForward answered, and the bytes are relayed both ways until either side ends, as the
kubelet's UpgradeAwareHandler proxies the CRI streaming server. Whatever the runtime's server
answers (101 and the streams, or its error) reaches the client unchanged.

One thread serves both directions: the client's socket may be an ssl.SSLSocket, which must not
be read and written from two threads at once."""
from __future__ import annotations

import select
import socket
import ssl
import urllib.parse
from http.server import BaseHTTPRequestHandler

from cri.streaming import handover

CHUNK = 65536
HIGH_WATER = 1 << 20        # above this many bytes queued for a side, the other is not read
DIAL_TIMEOUT = 10.0
# Ours to the runtime, not the client's: the credentials stay with the kubelet.
_DROPPED = {"host", "authorization", "content-length", "transfer-encoding"}


def proxy(handler: BaseHTTPRequestHandler, method: str, url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        handover.reject(handler, 500, f"unsupported streaming URL from the runtime: {url}")
        return
    try:
        upstream = socket.create_connection((parts.hostname, parts.port or 80), DIAL_TIMEOUT)
    except OSError as e:
        handover.reject(handler, 500, f"error dialing the runtime's streaming server "
                                      f"{parts.netloc}: {e.strerror or e}")
        return
    with upstream:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}"]
        lines += [f"{k}: {v}" for k, v in handler.headers.items() if k.lower() not in _DROPPED]
        try:
            upstream.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        except OSError as e:
            handover.reject(handler, 500, f"error sending to the runtime's streaming server: "
                                          f"{e.strerror or e}")
            return
        leftover = handover.take_over(handler)
        upstream.setblocking(False)
        try:
            _relay(handler.connection, upstream, bytearray(leftover))
        finally:
            handover.give_back(handler)


def _recv(sock: socket.socket) -> bytes | None:
    """What sock has (b"": it ended), None when nothing is ready after all."""
    try:
        return sock.recv(CHUNK)
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
        return None
    except OSError:
        return b""


def _send(sock: socket.socket, buffer: bytearray) -> bool:
    """Writes what it can of buffer (removing it); False when sock is gone."""
    try:
        sent = sock.send(buffer[:CHUNK])
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
        return True
    except OSError:
        return False
    del buffer[:sent]
    return True


def _relay(client: socket.socket, upstream: socket.socket, to_upstream: bytearray) -> None:
    to_client = bytearray()
    client_open = upstream_open = True      # each side still sends
    upstream_write_shut = False
    while True:
        if not upstream_open and not to_client:
            return
        if not client_open and not to_upstream and not upstream_write_shut:
            try:
                upstream.shutdown(socket.SHUT_WR)
            except OSError:
                return
            upstream_write_shut = True
        readers = []
        if client_open and len(to_upstream) < HIGH_WATER:
            readers.append(client)
        if upstream_open and len(to_client) < HIGH_WATER:
            readers.append(upstream)
        writers = ([upstream] if to_upstream else []) + ([client] if to_client else [])
        pending = client in readers and isinstance(client, ssl.SSLSocket) and client.pending()
        readable, writable, _ = select.select(readers, writers, [], 0 if pending else None)
        if pending and client not in readable:
            readable.append(client)
        if client in readable:
            data = _recv(client)
            if data == b"":
                client_open = False
            elif data:
                to_upstream += data
        if upstream in readable:
            data = _recv(upstream)
            if data == b"":
                upstream_open = False
            elif data:
                to_client += data
        if upstream in writable and not _send(upstream, to_upstream):
            return
        if client in writable and not _send(client, to_client):
            return
