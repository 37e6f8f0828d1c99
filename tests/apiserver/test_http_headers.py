"""HTTP header blocks read by our own parser (kubeapi/http_headers) on both sides: pyapiserver's
requests (raw bytes over TLS, kubectl, the official Python client) and the REST client's
responses (kubeapi/restclient's _Response on canned bytes)."""
from __future__ import annotations

import http.client
import io
import json
import os
import socket
import ssl
import time
import uuid

import pytest
from kubernetes import client

from apiserver_testlib import ADMIN_TOKEN
from kubeapi.kubeconfig import Connection
from kubeapi.http_headers import MAX_HEADERS, MAX_LINE, HeaderError, read_headers
from kubeapi.restclient import ApiClient, _Response

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


def _connect(server) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=os.path.join(server.data_dir, "pki", "ca.crt"))
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return ctx.wrap_socket(sock, server_hostname="127.0.0.1")


def _answer(sock: ssl.SSLSocket, method: str = "GET") -> tuple[int, dict, http.client.HTTPResponse]:
    """The next response on `sock`, read by the stdlib's parser (not the one under test)."""
    resp = http.client.HTTPResponse(sock, method=method)
    resp.begin()
    data = resp.read()
    return resp.status, json.loads(data) if data.startswith(b"{") else {"raw": data}, resp


def _exchange(server, head: str, body: bytes = b"", method: str = "GET") -> tuple[int, dict]:
    with _connect(server) as sock:
        sock.sendall(head.encode("latin-1") + body)
        status, answer, _ = _answer(sock, method)
        return status, answer


def _head(method: str, path: str, *fields: str, token: str = ADMIN_TOKEN) -> str:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    return "\r\n".join(lines + list(fields)) + "\r\n\r\n"


def _configmap(name: str) -> bytes:
    return json.dumps({"metadata": {"name": name}, "data": {"k": "v"}}).encode()


def _name() -> str:
    return "hdr-" + uuid.uuid4().hex[:8]


# -- the server's side --------------------------------------------------------------------------

def test_names_in_any_case(server):
    yaml_body = f"metadata: {{name: {_name()}}}\ndata: {{k: v}}\n".encode()
    status, body = _exchange(server, _head("POST", CONFIGMAPS, "CONTENT-type: application/yaml",
                                           f"content-LENGTH: {len(yaml_body)}")
                             .replace("Authorization", "aUtHoRiZaTiOn"), yaml_body, "POST")
    assert status == 201 and body["data"] == {"k": "v"}


def test_duplicate_headers_first_wins_and_lengths_must_agree(server):
    bogus = "Authorization: Bearer not-a-token"
    assert _exchange(server, _head("GET", "/api/v1/namespaces", bogus))[0] == 200
    status, body = _exchange(server, _head("GET", "/api/v1/namespaces", token="")
                             .replace("\r\n\r\n", f"\r\n{bogus}\r\nAuthorization: Bearer "
                                                  f"{ADMIN_TOKEN}\r\n\r\n"))
    assert status == 401 and body["kind"] == "Status"
    data = _configmap(_name())
    status, _ = _exchange(server, _head("POST", CONFIGMAPS, "Content-Type: application/json",
                                        f"Content-Length: {len(data)}",
                                        f"Content-Length: {len(data)}"), data, "POST")
    assert status == 201
    status, body = _exchange(server, _head("POST", CONFIGMAPS, "Content-Type: application/json",
                                           f"Content-Length: {len(data)}", "Content-Length: 2"),
                             data, "POST")
    assert status == 400 and body["reason"] == "BadRequest" and "Content-Length" in body["message"]


@pytest.mark.parametrize("fields, code", [
    ([f"X-Many-{i}: v" for i in range(MAX_HEADERS)], 431),
    (["X-Long: " + "a" * MAX_LINE], 431),
    (["X-Space : v"], 400),
    (["X:Ctl: \x01"], 400),
    (["No colon here"], 400),
])
def test_refused_header_blocks_get_a_status_and_a_closed_connection(server, fields, code):
    with _connect(server) as sock:
        sock.sendall(_head("GET", "/api/v1/namespaces", *fields).encode("latin-1"))
        status, body, resp = _answer(sock)
        assert status == code and body["kind"] == "Status" and body["code"] == code
        assert "Traceback" not in body["message"]
        assert resp.will_close and sock.recv(1) == b""
    assert server.alive()
    fewest_refused = [f"X-Many-{i}: v" for i in range(MAX_HEADERS - 1 - 2)]  # Host, Authorization
    assert _exchange(server, _head("GET", "/api/v1/namespaces", *fewest_refused))[0] == 200


def test_folded_field_is_joined_with_a_space(server):
    data = f"metadata: {{name: {_name()}}}\n".encode()
    status, body = _exchange(server, _head("POST", CONFIGMAPS, "Content-Type:\r\n application/yaml",
                                           f"Content-Length: {len(data)}"), data, "POST")
    assert status == 201, body
    status, body = _exchange(server, "GET /api HTTP/1.1\r\n folded-first: x\r\n\r\n")
    assert status == 400


def test_header_split_across_segments(server):
    head = _head("GET", "/api/v1/namespaces/default", "Accept: application/json").encode()
    cuts = [5, 21, head.index(b"Authorization") + 4, head.index(b"Bearer") - 1,
            head.index(b"\r\n\r\n") + 1, head.index(b"\r\n\r\n") + 3]
    with _connect(server) as sock:
        start = 0
        for cut in cuts + [len(head)]:
            sock.sendall(head[start:cut])
            start = cut
            time.sleep(0.05)
        status, body, resp = _answer(sock)
    assert status == 200 and body["metadata"]["name"] == "default" and not resp.will_close


def test_chunked_body_expect_continue_and_keep_alive(server):
    data = _configmap(_name())
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + 7]), data[i:i + 7])
                       for i in range(0, len(data), 7)) + b"0\r\n\r\n"
    with _connect(server) as sock:
        sock.sendall(_head("POST", CONFIGMAPS, "Content-Type: application/json",
                           "Transfer-Encoding: chunked").encode() + chunked)
        status, body, resp = _answer(sock, "POST")
        assert status == 201 and body["data"] == {"k": "v"} and not resp.will_close
        data = _configmap(_name())
        sock.sendall(_head("POST", CONFIGMAPS, "Content-Type: application/json",
                           f"Content-Length: {len(data)}", "Expect: 100-continue").encode())
        assert sock.recv(64).startswith(b"HTTP/1.1 100 ")
        sock.sendall(data)
        status, body, _ = _answer(sock, "POST")
        assert status == 201
        sock.sendall(_head("GET", "/version", "Connection: close").encode())
        status, body, resp = _answer(sock)
        assert status == 200 and "gitVersion" in body and resp.will_close


def test_bad_request_lines(server):
    assert _exchange(server, "GET /version HTTP/2.0\r\n\r\n")[0] == 505
    status, body = _exchange(server, "GET /version\r\n\r\n")
    assert status == 400 and body["kind"] == "Status"
    assert _exchange(server, _head("GET", "//version"))[0] == 200
    assert server.alive()


def test_kubectl_and_python_client(server):
    name = _name()
    core = client.CoreV1Api(server.client())
    try:
        core.create_namespaced_config_map("default", {"metadata": {"name": name},
                                                      "data": {"k": "v"}})
        out = server.kubectl("get", "configmap", name, "-n", "default", "-o", "json").stdout
        assert json.loads(out)["data"] == {"k": "v"}
        server.kubectl("label", "configmap", name, "-n", "default", "x=y")
        assert core.read_namespaced_config_map(name, "default").metadata.labels == {"x": "y"}
    finally:
        core.delete_namespaced_config_map(name, "default")
        core.api_client.close()


def test_rest_client_against_the_server(server):
    ctx = ssl.create_default_context(cafile=os.path.join(server.data_dir, "pki", "ca.crt"))
    conn = Connection(f"https://127.0.0.1:{server.port}", ctx, ctx, ADMIN_TOKEN)
    api = ApiClient(conn, "hdr-test")
    try:
        name = _name()
        api.create(CONFIGMAPS, {"metadata": {"name": name}})
        assert api.get(f"{CONFIGMAPS}/{name}")["metadata"]["name"] == name
        assert len(api._idle) == 1  # kept alive
        api.delete(f"{CONFIGMAPS}/{name}")
    finally:
        api.close()


# -- the client's side --------------------------------------------------------------------------

class _Canned:
    """A socket whose answer is canned bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(io.BytesIO(self.data))


def _response(data: bytes, method: str = "GET") -> _Response:
    resp = _Response(_Canned(data), method=method)
    resp.begin()
    return resp


def test_response_headers():
    resp = _response(b"HTTP/1.1 100 Continue\r\nX: y\r\n\r\n"
                     b"HTTP/1.1 200 OK\r\ncontent-TYPE: application/json\r\nWarning: a\r\n"
                     b"warning: b\r\nX-Fold: one\r\n\ttwo\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"3\r\n{}\n\r\n0\r\n\r\n")
    assert resp.status == 200 and resp.getheader("Content-Type") == "application/json"
    assert resp.headers.get_all("WARNING") == ["a", "b"] and resp.getheader("warning") == "a, b"
    assert resp.headers["x-fold"] == "one two" and resp.headers["missing"] is None
    assert resp.chunked and not resp.will_close and resp.read() == b"{}\n"
    resp = _response(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")
    assert resp.will_close and resp.length == 2 and resp.read() == b"{}"
    assert _response(b"HTTP/1.1 200 OK\r\n\r\nrest").will_close  # no length: up to the close
    assert _response(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").will_close
    assert _response(b"HTTP/1.1 204 No Content\r\n\r\n").length == 0


@pytest.mark.parametrize("head", [
    b"".join(b"X-%d: v\r\n" % i for i in range(MAX_HEADERS)),
    b"X: " + b"a" * MAX_LINE + b"\r\n",
    b"Bad Name: v\r\n",
    b" fold-first\r\n",
    b"Content-Length: -1\r\n",
    b"Content-Length: x\r\n",
])
def test_refused_response_headers_are_http_exceptions(head):
    with pytest.raises(http.client.HTTPException):
        _response(b"HTTP/1.1 200 OK\r\n" + head + b"\r\n")


def test_parser_bounds_match_http_client():
    most = b"".join(b"X-%d: v\r\n" % i for i in range(MAX_HEADERS - 1)) + b"\r\n"
    assert len(read_headers(io.BytesIO(most))) == len(http.client.parse_headers(io.BytesIO(most)))
    with pytest.raises(HeaderError) as e:
        read_headers(io.BytesIO(b"X-0: v\r\n" + most))
    assert e.value.status == 431
    with pytest.raises(http.client.HTTPException):
        http.client.parse_headers(io.BytesIO(b"X-0: v\r\n" + most))
    with pytest.raises(HeaderError):  # folds are lines too: a block stays bounded
        read_headers(io.BytesIO(b"X: v\r\n" + b" more\r\n" * MAX_HEADERS + b"\r\n"))
    longest = b"X: " + b"a" * (MAX_LINE - 5) + b"\r\n\r\n"
    assert read_headers(io.BytesIO(longest))["x"] == "a" * (MAX_LINE - 5)
    with pytest.raises(HeaderError):
        read_headers(io.BytesIO(b"A: 1\r\nB: 2"))  # cut short
