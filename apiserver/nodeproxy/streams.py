"""pods/exec, pods/attach and pods/portforward: upgrade requests (WebSocket or SPDY/3.1) proxied
to the kubelet of the pod's node, as kube-apiserver's upgrade-aware proxy does.

The kubelet gets the request on /exec/{ns}/{pod}/{container}, /attach/... or
/portForward/{ns}/{pod}, with the options re-encoded as kube-apiserver does (booleans as "1",
stdout and stderr defaulted on, `ports` joined into `port`) and the client's upgrade headers.
Its `101 Switching Protocols` goes back to the client unchanged, then the bytes are copied both
ways until either side closes; any other answer is returned with its status and body."""
from __future__ import annotations

import socket
import ssl
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from kubeapi import status
from kubeapi.status import ApiError

from ..registry.store import Store
from .logs import CONNECT_TIMEOUT, LogProxy
from .splice import splice

if TYPE_CHECKING:
    from ..request import Request

SUBRESOURCES = ("exec", "attach", "portforward")
_KUBELET_PATH = {"exec": "exec", "attach": "attach", "portforward": "portForward"}
# Hop-by-hop or ours to set: everything else of the client's request reaches the kubelet.
# Credentials stay here, as kube-apiserver drops Authorization once it has authenticated.
_DROPPED_HEADERS = {"host", "authorization", "content-length", "transfer-encoding",
                    "proxy-connection", "keep-alive"}
MAX_HEAD_BYTES = 64 * 1024
MAX_ERROR_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Proxied:
    """The kubelet's answer: a plain response, or `take_over` of the client's connection
    (its socket, and the bytes already read from it past the request) after a 101."""
    code: int
    body: bytes = b""
    content_type: str = ""
    take_over: Callable[[socket.socket, bytes], None] | None = None


@dataclass(frozen=True)
class KubeletAnswer:
    code: int
    headers: dict[str, str]   # lower-case names
    head: bytes               # the raw status line and headers, CRLF CRLF included
    rest: bytes               # bytes read past the head


def is_upgrade(req: Request) -> bool:
    """As httpstream.IsUpgradeRequest: some Connection header names the upgrade token."""
    return any(k.lower() == "connection" and "upgrade" in v.lower() for k, v in req.header_list)


def _flag(values: list[str]) -> bool:
    """A boolean query parameter as apimachinery converts it: absent, "0" or "false" is off."""
    return bool(values) and values[0] != "0" and values[0].lower() != "false"


_KUBELET_FLAG = {"stdin": "input", "stdout": "output", "stderr": "error", "tty": "tty"}


def kubelet_query(sub: str, query: dict[str, list[str]]) -> str:
    """The options of the request as kube-apiserver passes them on (streamParams)."""
    params: list[tuple[str, str]] = []
    if sub == "portforward":
        ports = [p for v in query.get("ports", []) for p in v.split(",")]
        for p in ports:
            if not p.strip().isdigit():
                raise status.bad_request(f'ports: invalid value "{p}": must be an integer')
        if ports:
            params.append(("port", ",".join(str(int(p)) for p in ports)))
        return urllib.parse.urlencode(params)
    flags = {"stdin": _flag(query.get("stdin", [])), "stdout": True, "stderr": True,
             "tty": _flag(query.get("tty", []))}
    # v1 defaulting sets stdout and stderr after the query is decoded, so they are always on
    # (the kubelet drops stderr itself when tty is set).
    if sub == "exec":
        params += [("command", c) for c in query.get("command", [])]
    # under the kubelet's names (k8s.io/api's ExecStdinParam ...: input, output, error, tty)
    params += [(_KUBELET_FLAG[k], "1") for k in sorted(flags) if flags[k]]
    return urllib.parse.urlencode(sorted(params, key=lambda kv: kv[0]))


class StreamProxy:
    def __init__(self, pods: Store, logs: LogProxy):
        self._pods = pods
        self._logs = logs  # its container, kubelet address and client certificate are ours too

    def connect(self, sub: str, namespace: str, name: str, req: Request) -> Proxied:
        if req.method not in ("GET", "POST"):
            raise ApiError(405, "MethodNotAllowed",
                           f"{req.method} is not allowed on pods/{sub}: use GET or POST")
        if not is_upgrade(req):
            raise status.bad_request("Upgrade request required")
        query = urllib.parse.parse_qs(req.raw_query, keep_blank_values=True)
        pod = self._pods.get(namespace, name)
        parts = [namespace, name]
        if sub != "portforward":
            parts.append(self._logs.container(pod, (query.get("container") or [""])[0]))
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            raise status.bad_request(f"pod {name} does not have a host assigned")
        host, port = self._logs.kubelet_address(node_name)
        path = "/" + "/".join([_KUBELET_PATH[sub]] + [urllib.parse.quote(p, safe="")
                                                        for p in parts])
        params = kubelet_query(sub, query)
        if params:
            path += "?" + params
        kubelet = self._dial(host, port)
        try:
            kubelet.sendall(self._request_head(req, host, port, path))
            answer = _read_head(kubelet)
        except ApiError:
            kubelet.close()
            raise
        except OSError as e:
            kubelet.close()
            raise ApiError(500, "InternalError", f"error dialing backend: {e}")
        if answer.code != 101:
            try:
                body = _read_body(kubelet, answer)
            finally:
                kubelet.close()
            return Proxied(answer.code, body,
                           answer.headers.get("content-type", "text/plain; charset=utf-8"))
        kubelet.settimeout(None)

        def take_over(client: socket.socket, buffered: bytes) -> None:
            splice(client, kubelet, to_a=answer.head + answer.rest, to_b=buffered)
        return Proxied(101, take_over=take_over)

    def _dial(self, host: str, port: int) -> ssl.SSLSocket:
        try:
            raw = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
        except OSError as e:
            raise ApiError(500, "InternalError", f"error dialing backend: dial tcp "
                           f"{host}:{port}: {e.strerror or e}")
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            return self._logs.tls.wrap_socket(raw)
        except OSError as e:
            raw.close()
            raise ApiError(500, "InternalError", f"error dialing backend: {e}")

    @staticmethod
    def _request_head(req: Request, host: str, port: int, path: str) -> bytes:
        lines = [f"{req.method} {path} HTTP/1.1", f"Host: {host}:{port}"]
        lines += [f"{k}: {v}" for k, v in req.header_list if k.lower() not in _DROPPED_HEADERS]
        if req.method == "POST":
            lines.append("Content-Length: 0")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _read_head(sock: ssl.SSLSocket) -> KubeletAnswer:
    buf = bytearray()
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            break
        if len(buf) > MAX_HEAD_BYTES:
            raise ApiError(500, "InternalError", "the kubelet's response head is too large")
        data = sock.recv(65536)
        if not data:
            raise ApiError(500, "InternalError", "error dialing backend: the kubelet closed "
                           "the connection before answering")
        buf += data
    head, rest = bytes(buf[:end + 4]), bytes(buf[end + 4:])
    lines = head.decode("latin-1").split("\r\n")
    try:
        code = int(lines[0].split()[1])
    except (IndexError, ValueError):
        raise ApiError(500, "InternalError",
                       f"the kubelet answered with a malformed status line: {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip().lower()] = value.strip()
    return KubeletAnswer(code, headers, head, rest)


def _read_body(sock: ssl.SSLSocket, answer: KubeletAnswer) -> bytes:
    """The body of a non-101 answer (Content-Length, chunked, or up to the close)."""
    data = bytearray(answer.rest)
    length = answer.headers.get("content-length", "")
    chunked = "chunked" in answer.headers.get("transfer-encoding", "").lower()
    try:
        while len(data) < MAX_ERROR_BODY_BYTES:
            if length.isdigit() and len(data) >= int(length):
                return bytes(data[:int(length)])
            if chunked and data.endswith(b"0\r\n\r\n"):
                break
            more = sock.recv(65536)
            if not more:
                break
            data += more
    except OSError:
        pass
    return _dechunk(bytes(data)) if chunked else bytes(data)


def _dechunk(data: bytes) -> bytes:
    out, pos = bytearray(), 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return bytes(out)
        try:
            size = int(data[pos:eol].split(b";")[0], 16)
        except ValueError:
            return bytes(out)
        if size == 0:
            return bytes(out)
        out += data[eol + 2:eol + 2 + size]
        pos = eol + 2 + size + 2
