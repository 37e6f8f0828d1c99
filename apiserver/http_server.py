"""HTTPS transport: a threaded http.server, TLS (client certificates optional, verified against
our CA), request parsing with body limits, authentication, chunked streaming responses."""
from __future__ import annotations

import re
import socket
import ssl
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from kubeapi.http_headers import HeaderError, read_headers
from kubeapi.status import ApiError

from .request import Request, Response, json_response, peer_closed_check
from .rest.api import Api

# kube-apiserver refuses bodies over 3 MiB; objects are limited to 1.5 MiB in etcd. One limit
# here: the largest object we store.
MAX_BODY_BYTES = 1536 * 1024
# Oversized bodies up to this size are read and dropped before the 413; larger ones cut the
# connection.
DRAIN_LIMIT_BYTES = 16 * MAX_BODY_BYTES
# An idle keep-alive connection is closed after this long.
IDLE_TIMEOUT = 120.0
# Names the worker of `pyapiserver --workers` that answered.
WORKER_HEADER = "X-Pyapiserver-Worker"
# The request line's version: HTTP/major.minor (only 1.x is served).
_VERSION = re.compile(r"HTTP/(\d+)\.\d+")


def tls_context(cert: str, key: str, client_ca: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(client_ca)
    ctx.verify_mode = ssl.CERT_OPTIONAL  # bearer tokens need no client certificate
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class ApiHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], api: Api, context: ssl.SSLContext,
                 listener: socket.socket | None = None, worker: str = ""):
        """With `listener`, accepts from that listening socket (shared by the workers of
        `pyapiserver --workers`, named by `worker` in every response) instead of binding."""
        self.api = api
        self.context = context
        self.worker = worker
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler, bind_and_activate=listener is None)
        if listener is not None:
            self.socket.close()
            self.socket = listener
            self.server_address = listener.getsockname()

    def get_request(self):
        sock, addr = self.socket.accept()
        # Headers and body go out in separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK add 40 ms to every response.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # The TLS handshake happens in the connection's own thread (see _Handler.setup), so
        # that a slow client cannot stall accept().
        return self.context.wrap_socket(sock, server_side=True,
                                        do_handshake_on_connect=False), addr

    def handle_error(self, request, client_address) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError, socket.timeout)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pyapiserver"
    server: ApiHTTPServer

    def setup(self) -> None:
        self.request.settimeout(IDLE_TIMEOUT)
        try:
            self.request.do_handshake()
        except (OSError, ssl.SSLError):
            self.request.close()
            raise ConnectionAbortedError("TLS handshake failed")
        super().setup()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's name
        pass  # one line per request would dominate the log of a busy node

    def parse_request(self) -> bool:
        """http.server's, with our header parser in place of the email package's (12-14 % of a
        create's CPU) and a Status for what we refuse."""
        self.command = None
        self.request_version = "HTTP/1.0"  # what an error before the version is answered in
        self.close_connection = True
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = self.requestline.split()
        if not words:
            return False
        version = _VERSION.fullmatch(words[-1])
        if len(words) != 3 or version is None:
            return self._refuse(400, "BadRequest", f"malformed request line {words[0][:64]!r}")
        if version[1] != "1":
            return self._refuse(505, "", f"HTTP version {words[2]!r} not supported")
        self.command, self.path, self.request_version = words
        # http.server's guard against a path that a client takes for another host.
        if self.path.startswith("//"):
            self.path = "/" + self.path.lstrip("/")
        try:
            self.headers = read_headers(self.rfile)
        except HeaderError as e:
            return self._refuse(e.status, "BadRequest" if e.status == 400 else "", str(e))
        if len(set(self.headers.get_all("content-length", []))) > 1:
            # Two lengths: a proxy in front may have taken the other one (request smuggling).
            return self._refuse(400, "BadRequest", "conflicting Content-Length headers")
        connection = (self.headers.get("connection") or "").lower()
        old = self.request_version == "HTTP/1.0"
        self.close_connection = connection == "close" or (old and connection != "keep-alive")
        if not old and (self.headers.get("expect") or "").lower() == "100-continue":
            return self.handle_expect_100()
        return True

    def _refuse(self, code: int, reason: str, message: str) -> bool:
        """Answers a request we cannot read with a Status, closing the connection after it."""
        self.close_connection = True
        self._send(json_response(code, ApiError(code, reason, message).status()))
        return False

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _serve(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query,
                                                            keep_blank_values=True).items()}
        headers = self.headers.lowered()
        req = Request(self.command, urllib.parse.unquote(url.path), query, headers,
                      peer_closed=peer_closed_check(self.request), raw_query=url.query,
                      header_list=self.headers.items())
        try:
            req.user = self.server.api.authenticator.authenticate(
                headers.get("authorization"), self.request.getpeercert())
            req.body = self._read_body(headers)
            response = self.server.api.handle(req)
        except ApiError as e:
            response = json_response(e.code, e.status())
        except Exception as e:  # a bug must not take the server down; the client gets a 500
            err = ApiError(500, "InternalError", f"Internal error occurred: {e!r}")
            response = json_response(500, err.status())
            self.server.handle_error(self.request, self.client_address)
        self._send(response)

    def _buffered(self) -> bytes:
        """Bytes the client sent after the request that rfile has already read."""
        self.request.settimeout(0.0)
        try:
            # peek() returns what is buffered without touching the socket, and reads it only
            # when the buffer is empty: non-blocking, that read gets what has arrived or fails.
            data = self.rfile.peek(1)
        except OSError:  # SSLWantReadError: nothing more has arrived
            return b""
        return self.rfile.read(len(data)) if data else b""

    def _read_body(self, headers: dict[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(headers.get("content-length") or 0)
        except ValueError:
            raise ApiError(400, "BadRequest", "invalid Content-Length")
        if length > MAX_BODY_BYTES:
            if length <= DRAIN_LIMIT_BYTES:
                # Read what the client is sending so that it gets to read our answer.
                while length > 0:
                    length -= len(self.rfile.read(min(length, 65536)) or b"x" * length)
            else:
                self.close_connection = True  # the unread body makes the connection unusable
            raise ApiError(413, "RequestEntityTooLarge",
                           f"Request entity too large: limit is {MAX_BODY_BYTES}")
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                raise ApiError(400, "BadRequest", "malformed chunked request body")
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(body)
            if len(body) + size > MAX_BODY_BYTES:
                self.close_connection = True
                raise ApiError(413, "RequestEntityTooLarge",
                               f"Request entity too large: limit is {MAX_BODY_BYTES}")
            body += self.rfile.read(size)
            self.rfile.readline(8)

    def _send(self, response: Response) -> None:
        if response.upgrade is not None:
            self.close_connection = True  # the connection is the upgrade's from now on
            response.upgrade(self.request, self._buffered())
            return
        try:
            self.send_response(response.code)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Cache-Control", "no-cache, private")
            if self.close_connection:
                self.send_header("Connection", "close")  # so that the client need not find out
            if self.server.worker:
                self.send_header(WORKER_HEADER, self.server.worker)
            for warning in response.warnings:
                self.send_header("Warning", f'299 - "{warning}"')
            if response.chunks is None:
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(response.body)
                return
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            self.request.settimeout(None)
            try:
                for chunk in response.chunks:
                    if chunk:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                # A live watch: the fan-out thread writes it from here on (apiserver/fanout).
                stream_to = getattr(response.chunks, "stream_to", None)
                if stream_to is not None:
                    rest = stream_to(self.request)
                    # A watch ended for being too far behind may have a client that reads
                    # nothing: its thread must not wait on it for ever.
                    self.request.settimeout(IDLE_TIMEOUT)
                    if rest:
                        self.wfile.write(rest)
                self.wfile.write(b"0\r\n\r\n")
            finally:
                close = getattr(response.chunks, "close", None)
                if close:
                    close()
                self.request.settimeout(IDLE_TIMEOUT)
        except (ConnectionError, ssl.SSLError, TimeoutError, socket.timeout):
            self.close_connection = True

