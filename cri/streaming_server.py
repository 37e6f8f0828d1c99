"""The CRI streaming server: the URLs that Exec, Attach and PortForward answer, as the kubelet's
streaming server package (k8s.io/kubelet/pkg/cri/streaming) serves them for containerd:

    GET|POST /exec/{token}         /attach/{token}         /portforward/{token}

A token names one request that the gRPC call validated and cached; it is good for one connection
within a minute (the cache's TTL in the reference). The protocols (WebSocket, SPDY) are
cri.streaming's, the same code as behind the kubelet's own /exec, /attach and /portForward; the
work is the runtime service's exec, attach and port_forward_dial."""
from __future__ import annotations

import http.server
import logging
import secrets
import socket
import threading
import time
from dataclasses import dataclass

from cri.api import RuntimeService
from cri.streaming import handover, portforward, remotecommand

log = logging.getLogger("pycontainer-cri.streaming")

TOKEN_TTL = 60.0     # the reference's cache TTL
MAX_IN_FLIGHT = 1000  # its cache's size limit: more is ResourceExhausted


@dataclass(frozen=True)
class ExecRequest:
    container_id: str
    cmd: tuple[str, ...]
    tty: bool
    stdin: bool
    stdout: bool
    stderr: bool


@dataclass(frozen=True)
class AttachRequest:
    container_id: str
    tty: bool
    stdin: bool
    stdout: bool
    stderr: bool


@dataclass(frozen=True)
class PortForwardRequest:
    sandbox_id: str
    ports: tuple[int, ...]


class TooManyRequests(Exception):
    """The token cache is full (the reference answers ResourceExhausted)."""


class _TokenCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, object]] = {}

    def insert(self, request: object) -> str:
        token = secrets.token_urlsafe(6)   # 8 characters, as the reference's tokens
        now = time.monotonic()
        with self._lock:
            self._entries = {t: e for t, e in self._entries.items() if e[0] > now}
            if len(self._entries) >= MAX_IN_FLIGHT:
                raise TooManyRequests("maximum number of in-flight requests exceeded")
            self._entries[token] = (now + TOKEN_TTL, request)
        return token

    def consume(self, token: str) -> object | None:
        with self._lock:
            entry = self._entries.pop(token, None)
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]


class StreamingServer:
    """HTTP on address:port (0: any free port), serving the runtime's streams."""

    def __init__(self, runtime: RuntimeService, address: str, port: int) -> None:
        self.runtime = runtime
        self.cache = _TokenCache()
        self.httpd = _Server((address, port), _handler_class(self))
        self._thread = threading.Thread(target=self.httpd.serve_forever,
                                        name="cri-streaming", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, request: ExecRequest | AttachRequest | PortForwardRequest) -> str:
        kind = {ExecRequest: "exec", AttachRequest: "attach",
                PortForwardRequest: "portforward"}[type(request)]
        return f"{self.base_url}/{kind}/{self.cache.insert(request)}"

    def serve(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        parts = handler.path.split("?", 1)[0].strip("/").split("/")
        if len(parts) != 2 or parts[0] not in ("exec", "attach", "portforward"):
            handover.reject(handler, 404, "404 page not found")
            return
        request = self.cache.consume(parts[1])
        expected = {"exec": ExecRequest, "attach": AttachRequest,
                    "portforward": PortForwardRequest}[parts[0]]
        if not isinstance(request, expected):
            handover.reject(handler, 404, "404 page not found")
            return
        if isinstance(request, PortForwardRequest):
            portforward.serve(handler, request.ports,
                              lambda port: self.runtime.port_forward_dial(request.sandbox_id,
                                                                          port),
                              pod=request.sandbox_id)
            return
        opts = remotecommand.Options(request.stdin, request.stdout,
                                     request.stderr and not request.tty, request.tty,
                                     request.cmd if isinstance(request, ExecRequest) else ())
        if isinstance(request, ExecRequest):
            remotecommand.serve(handler, opts, lambda session: self.runtime.exec(
                request.container_id, list(request.cmd), session))
        else:
            remotecommand.serve(handler, opts,
                                lambda session: self.runtime.attach(request.container_id,
                                                                    session))


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, handler)

    def handle_error(self, request, client_address) -> None:
        log.debug("stream from %s failed", client_address, exc_info=True)


def _handler_class(server: StreamingServer):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "pycontainer-cri"

        def do_GET(self) -> None:
            server.serve(self)

        def do_POST(self) -> None:
            server.serve(self)

        def log_message(self, format: str, *args: object) -> None:
            log.debug(format, *args)
    return Handler
