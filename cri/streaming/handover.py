"""Taking a connection over from http.server once the request head is read: a plain error
response when the request cannot be upgraded, or the socket (plain or TLS) in non-blocking mode
together with whatever the server's buffered reader had already read past the head."""
from __future__ import annotations

from http.server import BaseHTTPRequestHandler


def reject(handler: BaseHTTPRequestHandler, status: int, message: str,
           headers: tuple[tuple[str, str], ...] = ()) -> None:
    """One line of text with `status`, as Go's http.Error writes it; the connection ends."""
    body = (message + "\n").encode()
    handler.close_connection = True
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", "text/plain; charset=utf-8")
        handler.send_header("X-Content-Type-Options", "nosniff")
        for name, value in headers:
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(body)
        handler.wfile.flush()
    except OSError:
        pass    # the client is gone: nobody to tell


def refuse_protocol(handler: BaseHTTPRequestHandler, message: str, supported: list[str]) -> None:
    """403 naming the stream protocols we accept, as httpstream.Handshake answers."""
    reject(handler, 403, message,
           tuple(("X-Accepted-Stream-Protocol-Versions", p) for p in supported))


def take_over(handler: BaseHTTPRequestHandler) -> bytes:
    """Makes the handler's socket non-blocking and returns the bytes its reader had buffered."""
    handler.close_connection = True
    handler.wfile.flush()
    handler.connection.setblocking(False)
    try:
        # With a non-blocking socket, read1 returns what is buffered without waiting.
        return handler.rfile.read1(1 << 16) or b""
    except OSError:       # nothing buffered: EAGAIN, or SSL's want-read
        return b""


def give_back(handler: BaseHTTPRequestHandler) -> None:
    """Blocking again, for the HTTP server's own shutdown of the connection."""
    try:
        handler.connection.setblocking(True)
    except OSError:
        pass
