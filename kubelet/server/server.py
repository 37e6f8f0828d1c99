"""The kubelet's HTTPS endpoint (port 10250): /containerLogs/{namespace}/{pod}/{container}
with follow, previous, tailLines, timestamps, sinceSeconds, sinceTime and limitBytes (what the
API server's pods/log proxies to), /healthz, the metrics and stats endpoints (metrics.py), and
/exec, /attach, /portForward and /run (streaming.py), GET and POST.

Only authenticated callers get logs or streams: a client certificate signed by the client CA
(the API server presents one), or a bearer token with which the API server lets its holder
read that pod (asked once, remembered for 2 minutes, as the kubelet's webhook authenticator
caches)."""
from __future__ import annotations

import hashlib
import http.client
import http.server
import logging
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable

from kubeapi import timefmt
from kubeapi.kubeconfig import Connection
from kubelet.server import log_reader
from kubelet.server.metrics import PATHS as METRICS_PATHS, MetricsEndpoints
from kubelet.server.streaming import Streaming, parse_path

log = logging.getLogger("kubelet.server")

TOKEN_CACHE_TTL = 120.0
HANDSHAKE_TIMEOUT = 10.0


class LogNotFound(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# (namespace, pod, container, previous) -> (log path, is the container still running)
LogLookup = Callable[[str, str, str, bool], tuple[str, Callable[[], bool]]]


class TokenReviewer:
    """Asks the API server whether a bearer token may read a pod."""

    def __init__(self, conn: Connection) -> None:
        parsed = urllib.parse.urlsplit(conn.server)
        self.host, self.port = parsed.hostname, parsed.port or 443
        self.prefix = parsed.path.rstrip("/")
        self.context = conn.plain_context
        self._cache: dict[str, tuple[float, bool]] = {}
        self._lock = threading.Lock()

    def allowed(self, token: str, namespace: str, pod: str) -> bool:
        return self.may_get(token, f"/api/v1/namespaces/{urllib.parse.quote(namespace)}"
                                   f"/pods/{urllib.parse.quote(pod)}")

    def may_get(self, token: str, api_path: str) -> bool:
        """Whether the token's holder may GET api_path on the API server."""
        key = hashlib.sha256(f"{token}\0{api_path}".encode()).hexdigest()
        with self._lock:
            cached = self._cache.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        conn = http.client.HTTPSConnection(self.host, self.port, timeout=10,
                                           context=self.context)
        try:
            conn.request("GET", f"{self.prefix}{api_path}",
                         headers={"Authorization": f"Bearer {token}",
                                  "Accept": "application/json"})
            resp = conn.getresponse()
            resp.read()
            ok = resp.status == 200
        except (OSError, http.client.HTTPException):
            return False   # not cached: the API server may answer the next time
        finally:
            conn.close()
        with self._lock:
            self._cache[key] = (time.monotonic() + TOKEN_CACHE_TTL, ok)
        return ok


class KubeletServer:
    def __init__(self, address: str, port: int, certificate: Callable[[], tuple[str, str]],
                 client_ca: bytes, reviewer: TokenReviewer | None, anonymous: bool,
                 lookup: LogLookup) -> None:
        """certificate() gives the (certificate, key) files; it is asked once the port is
        taken, so that a port in use fails before anything is written."""
        self.reviewer = reviewer
        self.anonymous = anonymous
        self.lookup = lookup
        # Set by the kubelet once its runtime exists (made after the port is taken).
        self.metrics: MetricsEndpoints | None = None
        self.streaming: Streaming | None = None
        self.httpd = _Server((address, port), _handler_class(self))
        try:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*certificate())
            if client_ca:
                ctx.verify_mode = ssl.CERT_OPTIONAL
                ctx.load_verify_locations(cadata=client_ca.decode())
        except BaseException:
            self.httpd.server_close()
            raise
        self.context = ctx      # a rotated serving certificate is loaded into it
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True,
                                            do_handshake_on_connect=False)
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="kubelet-server",
                                        daemon=True)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler) -> None:
        host = address[0]
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__(address, handler)

    def handle_error(self, request, client_address) -> None:
        log.debug("request from %s failed", client_address, exc_info=True)


def _handler_class(server: KubeletServer):
    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "pykubelet"

        def setup(self) -> None:
            # The TLS handshake here, in the request's own thread, not in the accept loop.
            self.request.settimeout(HANDSHAKE_TIMEOUT)
            self.request.do_handshake()
            self.request.settimeout(None)
            super().setup()

        def log_message(self, fmt: str, *args) -> None:
            log.debug("%s " + fmt, self.address_string(), *args)

        def _reply(self, status: int, text: str) -> None:
            body = text.encode() + b"\n"
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _authenticated(self, namespace: str, pod: str) -> bool:
            if self.request.getpeercert():
                return True
            scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
            if scheme.lower() == "bearer" and token and server.reviewer is not None:
                return server.reviewer.allowed(token.strip(), namespace, pod)
            return server.anonymous

        def _metrics(self, parts: list[str], query: dict) -> None:
            scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
            if not (self.request.getpeercert() or (
                    scheme.lower() == "bearer" and token and server.reviewer is not None and
                    server.reviewer.may_get(token.strip(), server.metrics.node_path)) or
                    (not token and server.anonymous)):
                self._reply(401, "Unauthorized")
                return
            reply = server.metrics.serve(parts, query)
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        def _streaming(self, method: str) -> bool:
            """Serves /exec, /attach, /portForward and /run (kubelet.server.streaming); False
            for any other path."""
            url = urllib.parse.urlsplit(self.path)
            request = parse_path([urllib.parse.unquote(p) for p in url.path.split("/") if p])
            if request is None or server.streaming is None:
                return False
            if not self._authenticated(request.namespace, request.pod):
                self._reply(401, "Unauthorized")
            else:
                server.streaming.serve(self, method, request, url.query)
            return True

        def do_POST(self) -> None:
            if not self._streaming("POST"):
                self._reply(404, "404 page not found")

        def do_GET(self) -> None:
            if self._streaming("GET"):
                return
            url = urllib.parse.urlsplit(self.path)
            parts = [urllib.parse.unquote(p) for p in url.path.split("/") if p]
            if parts == ["healthz"]:
                self._reply(200, "ok")
                return
            if tuple(parts) in METRICS_PATHS and server.metrics is not None:
                self._metrics(parts, urllib.parse.parse_qs(url.query))
                return
            if len(parts) != 4 or parts[0] != "containerLogs":
                self._reply(404, "404 page not found")
                return
            _, namespace, pod, container = parts
            if not self._authenticated(namespace, pod):
                self._reply(401, "Unauthorized")
                return
            query = urllib.parse.parse_qs(url.query)
            try:
                opts = _options(query)
                path, running = server.lookup(namespace, pod, container,
                                              _flag(query, "previous"))
            except LogNotFound as e:
                self._reply(e.status, str(e))
                return
            except ValueError as e:
                self._reply(400, str(e))
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            try:
                log_reader.stream(path, opts, self.wfile.write, running)
            except FileNotFoundError:
                pass  # removed meanwhile: what was sent is all there is
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                pass  # the client went away

    return Handler


def _flag(query: dict, name: str) -> bool:
    return (query.get(name) or ["false"])[-1].lower() in ("true", "1")


def _int(query: dict, name: str) -> int | None:
    value = (query.get(name) or [None])[-1]
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name}: {value!r} is not an integer") from None


def _options(query: dict) -> log_reader.Options:
    since = None
    if (seconds := _int(query, "sinceSeconds")) is not None:
        since = time.time() - seconds
    elif query.get("sinceTime"):
        try:
            since = timefmt.parse(query["sinceTime"][-1])
        except ValueError:
            raise ValueError(f"sinceTime: {query['sinceTime'][-1]!r} is not RFC 3339") from None
    return log_reader.Options(follow=_flag(query, "follow"), tail_lines=_int(query, "tailLines"),
                              timestamps=_flag(query, "timestamps"), since=since,
                              limit_bytes=_int(query, "limitBytes"))
