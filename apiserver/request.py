"""A parsed HTTP request and the response to it, as the REST layer and the handlers it routes to
(metrics, pod streams) see them; the transport (http_server.py) builds the one and sends the
other."""
from __future__ import annotations

import json
import select
import socket
import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator

from kubeapi.status import ApiError

if TYPE_CHECKING:
    from .auth.authn import User


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]          # lower-case names
    body: bytes = b""
    user: User | None = None
    peer_closed: Callable[[], bool] = field(default=lambda: False)
    raw_query: str = ""              # with repeated parameters (exec's command)
    header_list: list[tuple[str, str]] = field(default_factory=list)  # as sent, repeats kept


@dataclass
class Response:
    code: int
    body: bytes
    content_type: str = "application/json"
    # A streaming response (watch, logs) sends these chunks instead of body.
    chunks: Iterator[bytes] | None = None
    # An upgraded connection (exec, attach, port-forward): called with the client's socket and
    # the bytes already read past the request; it writes the whole answer itself.
    upgrade: Callable[[socket.socket, bytes], None] | None = None
    warnings: list[str] = field(default_factory=list)  # sent as Warning: 299 headers


class Encoded(dict):
    """An object that carries its JSON, so that answering with it does not encode it again
    (a store's create: the stored bytes with the resourceVersion spliced in). The JSON is not
    kept in step with the dict: a caller that changes the object answers with a plain dict."""
    __slots__ = ("json",)

    def __init__(self, obj: dict, encoded: bytes):
        super().__init__(obj)
        self.json = encoded


def json_response(code: int, obj: object) -> Response:
    if type(obj) is Encoded:
        return Response(code, obj.json)
    return Response(code, json.dumps(obj, separators=(",", ":")).encode())


def no_route() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def wants_table(req: Request) -> bool:
    accept = req.headers.get("accept", "")
    first = accept.split(",")[0]
    return "as=Table" in first


def peer_closed_check(sock) -> Callable[[], bool]:
    """A cheap test whether the client of a streaming response has gone away."""
    def closed() -> bool:
        try:
            if not select.select([sock], [], [], 0)[0]:
                return False
        except (OSError, ValueError):
            return True
        timeout = sock.gettimeout()
        sock.settimeout(0)
        try:
            return sock.recv(1) == b""
        except (ssl.SSLWantReadError, BlockingIOError):
            return False
        except OSError:
            return True
        finally:
            sock.settimeout(timeout)
    return closed
