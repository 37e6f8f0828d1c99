"""A small Kubernetes REST client on http.client + ssl: JSON requests over kept-alive HTTPS
connections (a pool shared by threads), paginated lists, chunked watch streams, and retries with
backoff for what a restart of the API server looks like (refused connections, 5xx, 429)."""
from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator

from kubeapi.http_headers import read_headers
from kubeapi.kubeconfig import Connection
from kubeapi.status import ApiError

# What a kept-alive connection gives when the server closed it while idle (a TLS peer that
# closes without close_notify gives SSLEOFError): the request is sent again on a new one, as
# Go's transport does for a reused connection the server closed.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
          ssl.SSLEOFError, ssl.SSLZeroReturnError)
_RETRY_STATUS = {429, 500, 502, 503, 504}
PATCH_TYPES = {"merge": "application/merge-patch+json",
               "strategic": "application/strategic-merge-patch+json",
               "json": "application/json-patch+json"}


class Unavailable(ApiError):
    """No answer at all: the API server is down, unreachable, or timed out."""

    def __init__(self, message: str) -> None:
        super().__init__(0, "Unavailable", message)


class _Response(http.client.HTTPResponse):
    """http.client's response with our header parser in place of the email package's (~10 % of
    the kubelet's CPU). begin() is the only seam: it calls the module's parse_headers itself."""

    def begin(self) -> None:
        if self.headers is not None:
            return
        while True:
            version, status, reason = self._read_status()
            if status != http.client.CONTINUE:
                break
            read_headers(self.fp)
        if not version.startswith("HTTP/1."):
            raise http.client.UnknownProtocol(version)
        self.code = self.status = status
        self.reason = reason.strip()
        self.version = 10 if version == "HTTP/1.0" else 11
        self.headers = self.msg = read_headers(self.fp)
        self.chunked = (self.headers.get("transfer-encoding") or "").lower() == "chunked"
        self.chunk_left = None
        self.length = None
        length = self.headers.get("content-length")
        if length and not self.chunked:
            try:
                self.length = int(length)
            except ValueError:
                raise http.client.HTTPException(f"invalid Content-Length {length[:32]!r}")
            if self.length < 0:
                raise http.client.HTTPException(f"invalid Content-Length {length[:32]!r}")
        if status in (204, 304) or status < 200 or self._method == "HEAD":
            self.length = 0
        connection = (self.headers.get("connection") or "").lower()
        if self.version == 11:
            self.will_close = "close" in connection
        else:
            self.will_close = "keep-alive" not in connection and "keep-alive" not in self.headers
        # Without a length or chunks, the body ends where the connection does.
        if not self.chunked and self.length is None:
            self.will_close = True


class _Connection(http.client.HTTPSConnection):
    response_class = _Response


class ApiClient:
    def __init__(self, conn: Connection, user_agent: str, timeout: float = 30.0) -> None:
        parsed = urllib.parse.urlsplit(conn.server)
        self.host = parsed.hostname or ""
        self.port = parsed.port or 443
        self.prefix = parsed.path.rstrip("/")
        self.context = conn.context
        self.timeout = timeout
        self.headers = {"Accept": "application/json", "User-Agent": user_agent}
        if conn.token:
            self.headers["Authorization"] = f"Bearer {conn.token}"
        self._idle: list[http.client.HTTPSConnection] = []
        self._lock = threading.Lock()

    # -- connections --------------------------------------------------------------------------

    def _connect(self, timeout: float | None) -> http.client.HTTPSConnection:
        conn = _Connection(self.host, self.port, timeout=timeout, context=self.context)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def _take(self) -> tuple[http.client.HTTPSConnection, bool]:
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return self._connect(self.timeout), False

    def _give_back(self, conn: http.client.HTTPSConnection) -> None:
        with self._lock:
            self._idle.append(conn)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def url(self, path: str, query: dict | None = None) -> str:
        full = self.prefix + path
        if query:
            full += "?" + urllib.parse.urlencode({k: v for k, v in query.items()
                                                  if v is not None})
        return full

    # -- requests -----------------------------------------------------------------------------

    def request(self, method: str, path: str, body: object = None, query: dict | None = None,
                content_type: str = "application/json", retries: int = 0) -> dict | None:
        """The decoded JSON answer. ApiError for a non-2xx answer, Unavailable when there is
        none; `retries` more attempts, with backoff, for Unavailable, 429 and 5xx."""
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        delay = 0.2
        for attempt in range(retries + 1):
            try:
                return self._once(method, self.url(path, query), data, content_type)
            except ApiError as e:
                if attempt == retries or not (isinstance(e, Unavailable) or
                                              e.code in _RETRY_STATUS):
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")

    def _once(self, method: str, url: str, data: bytes | None, content_type: str) -> dict | None:
        headers = dict(self.headers)
        if data is not None:
            headers["Content-Type"] = content_type
        for _ in range(2):  # a second time only when a kept-alive connection had gone stale
            try:
                conn, reused = self._take()
            except (OSError, http.client.HTTPException) as e:
                raise Unavailable(f"{self.host}:{self.port}: {e}") from None
            try:
                conn.request(method, url, body=data, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
            except _STALE as e:
                conn.close()
                if reused:
                    self.close()  # the other idle ones are as old: a new connection next
                    continue
                raise Unavailable(f"{method} {url}: {e}") from None
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                raise Unavailable(f"{method} {url}: {e}") from None
            if resp.will_close:
                conn.close()
            else:
                self._give_back(conn)
            return _decode(resp.status, payload)
        raise Unavailable(f"{method} {url}: connection closed")

    def get(self, path: str, query: dict | None = None, retries: int = 0) -> dict:
        return self.request("GET", path, query=query, retries=retries)

    def create(self, path: str, obj: dict, retries: int = 0) -> dict:
        return self.request("POST", path, obj, retries=retries)

    def patch(self, path: str, patch: object, patch_type: str = "merge",
              retries: int = 0) -> dict:
        return self.request("PATCH", path, patch, content_type=PATCH_TYPES[patch_type],
                            retries=retries)

    def delete(self, path: str, options: dict | None = None, retries: int = 0) -> dict | None:
        body = {"kind": "DeleteOptions", "apiVersion": "v1", **options} if options else None
        return self.request("DELETE", path, body, retries=retries)

    def list_all(self, path: str, query: dict | None = None,
                 page: int = 500) -> tuple[list[dict], str]:
        """Every item, page by page; and the list's resourceVersion to watch from."""
        items: list[dict] = []
        token = ""
        while True:
            q = dict(query or {}, limit=page)
            if token:
                q["continue"] = token
            result = self.get(path, q)
            items.extend(result.get("items") or [])
            meta = result.get("metadata") or {}
            token = meta.get("continue") or ""
            if not token:
                return items, meta.get("resourceVersion", "")

    def watch(self, path: str, query: dict | None = None) -> Watch:
        """A watch stream (watch=1 is added); iterate it for (type, object) pairs."""
        q = dict(query or {}, watch="1")
        try:
            conn = self._connect(self.timeout)
            conn.request("GET", self.url(path, q), headers=self.headers)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            raise Unavailable(f"watch {path}: {e}") from None
        if resp.status != 200:
            payload = resp.read()
            conn.close()
            _decode(resp.status, payload)
        # The server ends the watch at timeoutSeconds; until then events may be far apart.
        conn.sock.settimeout(None)
        return Watch(conn, resp)


class Watch:
    """The events of one watch request. close() from any thread ends the iteration. Only one
    thread ever closes the connection (the reader, or close() when none reads): http.client's
    response is not safe to close under a read, which once raised AttributeError in it."""

    def __init__(self, conn: http.client.HTTPSConnection, resp: http.client.HTTPResponse) -> None:
        self._conn = conn
        self._resp = resp
        self._lock = threading.Lock()
        self._closing = False
        self._reading = False
        self._released = False

    def __iter__(self) -> Iterator[tuple[str, dict]]:
        with self._lock:
            if self._closing:
                return
            self._reading = True
        try:
            while True:
                line = self._resp.readline()
                if not line:
                    return
                if not line.strip():
                    continue
                event = json.loads(line)
                kind, obj = event.get("type", ""), event.get("object") or {}
                if kind == "ERROR":
                    raise ApiError(int(obj.get("code") or 500), obj.get("reason", ""),
                                   obj.get("message", ""))
                yield kind, obj
        except (OSError, http.client.HTTPException, ValueError) as e:
            if self._closing:
                return
            raise Unavailable(f"watch stream: {e}") from None
        finally:
            with self._lock:
                self._reading = False
            self._release()

    def close(self) -> None:
        with self._lock:
            self._closing = True
            reading = self._reading
        sock = self._conn.sock
        if sock is not None:
            try:
                # socket.socket's own shutdown: the reader wakes up to an end of stream.
                # SSLSocket's would also drop its SSL object under that reader.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass
        if not reading:
            self._release()

    def _release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self._conn.close()


def _decode(status: int, payload: bytes) -> dict | None:
    try:
        body = json.loads(payload) if payload else None
    except ValueError:
        body = None
    if 200 <= status < 300:
        return body
    if isinstance(body, dict) and body.get("kind") == "Status":
        raise ApiError(status, body.get("reason", ""), body.get("message", ""))
    raise ApiError(status, http.client.responses.get(status, ""),
                   payload[:200].decode(errors="replace"))
