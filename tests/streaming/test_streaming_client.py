"""The official Python client's WebSocket machinery against cri.streaming (exec with its exit
code, stdin closed with v5's CLOSE, terminal resizes, port-forward), and the protocol variants
no stock client uses any more, spoken by hand: base64 channels, channel.k8s.io's plain-text
errors, SPDY v2, and the refusals."""
from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import threading
import time

import pytest
import websocket as wsclient
from kubernetes.stream import portforward, stream

from cri.streaming import spdy
from cri.streaming.backend import Session
from streaming_testlib import NAMESPACE, POD, UID, body_for, run_process, start

DEADLINE = 30.0


@pytest.fixture
def api(front):
    core = front.client()
    yield core
    core.api_client.close()


def _exec(api, command, **kwargs):
    return stream(api.connect_get_namespaced_pod_exec, POD, NAMESPACE, command=command,
                  stderr=True, stdout=True, _preload_content=False, **kwargs)


def _run(resp) -> tuple[str, str]:
    out, err = [], []
    deadline = time.monotonic() + DEADLINE
    while resp.is_open() and time.monotonic() < deadline:
        resp.update(timeout=1)
        out.append(resp.read_stdout(timeout=0) if resp.peek_stdout() else "")
        err.append(resp.read_stderr(timeout=0) if resp.peek_stderr() else "")
    assert not resp.is_open(), "the session did not end"
    out.append(resp.read_stdout(timeout=0) if resp.peek_stdout() else "")
    err.append(resp.read_stderr(timeout=0) if resp.peek_stderr() else "")
    return "".join(out), "".join(err)


def test_python_client_exec_exit_codes(api):
    resp = _exec(api, ["sh", "-c", "echo out; echo err >&2; exit 7"])
    out, err = _run(resp)
    assert (out, err, resp.returncode) == ("out\n", "err\n", 7)
    resp.close()

    resp = _exec(api, ["true"])
    _run(resp)
    assert resp.returncode == 0
    resp.close()


def test_python_client_stdin_closed_with_v5_close(api):
    resp = _exec(api, ["tr", "a-z", "A-Z"], stdin=True)
    assert resp.subprotocol == "v5.channel.k8s.io"
    resp.write_stdin("shout this\n")
    resp.close_channel(0)
    out, _ = _run(resp)
    assert (out, resp.returncode) == ("SHOUT THIS\n", 0)
    resp.close()


def test_python_client_terminal_resize(front, api):
    def report_sizes(command: list[str], session: Session) -> int:
        # A tty session has no stderr stream; each size the client sends reaches the backend.
        assert session.tty and session.stderr is None
        sizes = [session.resizes.get(timeout=DEADLINE) for _ in range(2)]
        os.write(session.stdout, " ".join(f"{s.width}x{s.height}" for s in sizes).encode())
        return 0
    front.exec = report_sizes
    try:
        resp = stream(api.connect_get_namespaced_pod_exec, POD, NAMESPACE, command=["x"],
                      stdout=True, tty=True, _preload_content=False)
        resp.write_channel(4, json.dumps({"Width": 80, "Height": 24}))
        resp.write_channel(4, json.dumps({"Width": 132, "Height": 50}))
        out, _ = _run(resp)
        resp.close()
    finally:
        front.exec = run_process
    assert out == "80x24 132x50"


def test_python_client_port_forward(api, web):
    pf = portforward(api.connect_get_namespaced_pod_portforward, POD, NAMESPACE,
                     ports=str(web.port))
    sock = pf.socket(web.port)
    sock.settimeout(DEADLINE)
    sock.sendall(b"GET /through-websocket HTTP/1.0\r\n\r\n")
    response = b""
    while chunk := sock.recv(65536):
        response += chunk
    sock.close()
    assert response.startswith(b"HTTP/1.0 200")
    assert response.endswith(body_for("/through-websocket"))
    assert pf.error(web.port) is None
    pf.close()


# -- by hand ------------------------------------------------------------------------------

def _ws(front, path: str, protocol: str) -> wsclient.WebSocket:
    url = front.url.replace("https", "wss") + path
    return wsclient.create_connection(url, subprotocols=[protocol], timeout=DEADLINE,
                                      sslopt={"cert_reqs": ssl.CERT_NONE})


def _messages(ws: wsclient.WebSocket) -> list[tuple[int, bytes]]:
    """(opcode, payload) until the server closes."""
    received = []
    while True:
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == wsclient.ABNF.OPCODE_CLOSE:
            return received
        received.append((opcode, data))


EXEC_FAIL = (f"/api/v1/namespaces/{NAMESPACE}/pods/{POD}/exec"
             "?command=sh&command=-c&command=echo+hi%3Bexit+3&stdout=1")


def test_base64_channels(front):
    ws = _ws(front, EXEC_FAIL, "v4.base64.channel.k8s.io")
    assert ws.subprotocol == "v4.base64.channel.k8s.io"
    messages = _messages(ws)
    ws.close()
    assert all(opcode == wsclient.ABNF.OPCODE_TEXT for opcode, _ in messages)
    decoded = [(chr(data[0]), base64.b64decode(data[1:])) for _, data in messages]
    # The empty message on stdout first: the client's sign that the streams are up.
    assert decoded[0] == ("1", b"")
    assert decoded[1] == ("1", b"hi\n")
    assert decoded[2][0] == "3" and json.loads(decoded[2][1])["reason"] == "NonZeroExitCode"


def test_channel_v1_plain_text_error(front):
    ws = _ws(front, EXEC_FAIL, "channel.k8s.io")
    messages = _messages(ws)
    ws.close()
    assert [data for _, data in messages] == [
        b"\x01", b"\x01hi\n",
        b"\x03command terminated with non-zero exit code: error executing command "
        b"[sh -c echo hi;exit 3], exit code 3"]


def test_v4_status_json_exact(front):
    ws = _ws(front, EXEC_FAIL, "v4.channel.k8s.io")
    messages = _messages(ws)
    ws.close()
    assert messages[-1][1] == (
        b'\x03{"metadata":{},"status":"Failure","message":"command terminated with non-zero '
        b'exit code: error executing command [sh -c echo hi;exit 3], exit code 3",'
        b'"reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}')


class SpdyClient:
    """A minimal SPDY/3.1 client (our framer on the client side) over a TLS socket."""

    def __init__(self, front, path: str, protocol: str) -> None:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        raw = socket.create_connection(("127.0.0.1", front.server.server_address[1]),
                                       timeout=DEADLINE)
        self.sock = context.wrap_socket(raw)
        self.sock.sendall((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n"
                           f"Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: {protocol}\r\n"
                           "Content-Length: 0\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self._recv()
        self.head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.framer = spdy.Framer()
        self.next_id = 1

    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        return data

    def open(self, **headers: str) -> int:
        sid, self.next_id = self.next_id, self.next_id + 2
        frame = spdy.SynStream(sid, {k: [v] for k, v in headers.items()})
        self.sock.sendall(self.framer.encode(frame))
        return sid

    def frames(self) -> list[spdy.Frame]:
        """Every frame until the server closes."""
        frames = self.framer.feed(self.buf)
        while True:
            try:
                frames += self.framer.feed(self._recv())
            except EOFError:
                return frames

    def close(self) -> None:
        self.sock.close()


def _data(frames: list[spdy.Frame], stream_id: int) -> bytes:
    return b"".join(f.data for f in frames
                    if isinstance(f, spdy.DataFrame) and f.stream_id == stream_id)


def test_spdy_v2_text_error_and_clean_end(front):
    client = SpdyClient(front, EXEC_FAIL, "v2.channel.k8s.io")
    assert b"101 Switching Protocols" in client.head
    assert b"X-Stream-Protocol-Version: v2.channel.k8s.io" in client.head
    error = client.open(streamType="error")
    stdout = client.open(streamType="stdout")
    frames = client.frames()
    client.close()
    assert [f.stream_id for f in frames if isinstance(f, spdy.SynReply)] == [error, stdout]
    data = {sid: _data(frames, sid) for sid in (error, stdout)}
    assert data[stdout] == b"hi\n"
    assert data[error] == (b"command terminated with non-zero exit code: error executing command "
                           b"[sh -c echo hi;exit 3], exit code 3")
    fins = {f.stream_id for f in frames if isinstance(f, spdy.DataFrame) and f.fin}
    assert fins == {error, stdout}
    assert isinstance(frames[-1], spdy.GoAway)


def _plain_request(front, request: bytes) -> bytes:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with context.wrap_socket(socket.create_connection(
            ("127.0.0.1", front.server.server_address[1]), timeout=DEADLINE)) as sock:
        sock.sendall(request)
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    return response


def test_refusals(front):
    exec_path = f"/api/v1/namespaces/{NAMESPACE}/pods/{POD}/exec?command=true&stdout=1"
    no_upgrade = _plain_request(front, f"GET {exec_path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert no_upgrade.startswith(b"HTTP/1.1 400 ")
    assert no_upgrade.endswith(b"\r\n\r\nunable to upgrade: missing upgrade headers in request\n")

    bad_protocol = _plain_request(front, (
        f"POST {exec_path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
        "X-Stream-Protocol-Version: v9.channel.k8s.io\r\nContent-Length: 0\r\n\r\n").encode())
    assert bad_protocol.startswith(b"HTTP/1.1 403 ")
    assert b"X-Accepted-Stream-Protocol-Versions: v4.channel.k8s.io" in bad_protocol
    assert bad_protocol.endswith(
        b"unable to upgrade: unable to negotiate protocol: client supports [v9.channel.k8s.io], "
        b"server accepts [v5.channel.k8s.io v4.channel.k8s.io v3.channel.k8s.io "
        b"v2.channel.k8s.io channel.k8s.io]\n")

    with pytest.raises(wsclient.WebSocketBadStatusException) as bad_ws:
        _ws(front, exec_path, "v9.channel.k8s.io")
    assert bad_ws.value.status_code == 400


def test_plain_http_front(tmp_path):
    """Plain HTTP, as the API server's proxy may use on loopback: the same protocols."""
    front = start(None)
    try:
        ws = wsclient.create_connection(front.url.replace("http", "ws") + EXEC_FAIL,
                                        subprotocols=["v5.channel.k8s.io"], timeout=DEADLINE)
        messages = _messages(ws)
        ws.close()
    finally:
        front.close()
    assert [data[:1] for _, data in messages] == [b"\x01", b"\x01", b"\x03"]


def test_python_client_port_forward_refused_port(api, web, closed_port):
    pf = portforward(api.connect_get_namespaced_pod_portforward, POD, NAMESPACE,
                     ports=f"{closed_port},{web.port}")
    refused = pf.socket(closed_port)
    refused.settimeout(DEADLINE)
    assert refused.recv(1) == b""        # the pod side is gone: the local socket ends
    working = pf.socket(web.port)
    working.settimeout(DEADLINE)
    working.sendall(b"GET /second HTTP/1.0\r\n\r\n")
    response = b""
    while chunk := working.recv(65536):
        response += chunk
    refused.close()
    working.close()
    assert response.endswith(body_for("/second"))
    assert pf.error(closed_port) == (
        f"error forwarding port {closed_port} to pod {POD}, uid {UID}: "
        f"dial tcp4 127.0.0.1:{closed_port}: connect: connection refused")
    pf.close()


PORT_FORWARD = f"/api/v1/namespaces/{NAMESPACE}/pods/{POD}/portforward"


def test_spdy_port_forward_streams(front, web):
    client = SpdyClient(front, PORT_FORWARD, "portforward.k8s.io")
    assert b"X-Stream-Protocol-Version: portforward.k8s.io" in client.head
    bad = client.open(streamType="data", port="0", requestID="9")
    error = client.open(streamType="error", port=str(web.port), requestID="1")
    data = client.open(streamType="data", port=str(web.port), requestID="1")
    client.sock.sendall(client.framer.encode(spdy.DataFrame(error, b"", fin=True)))
    request = spdy.DataFrame(data, b"GET /spdy HTTP/1.0\r\n\r\n", fin=True)
    client.sock.sendall(client.framer.encode(request))
    frames = []
    # Until the error stream ends the pair (after the data stream's FIN); then leave.
    while not any(isinstance(f, spdy.DataFrame) and f.fin and f.stream_id == error for f in frames):
        frames += client.framer.feed(client._recv())
    client.close()
    # A stream with a bad port is refused (reset, no reply), as the kubelet's handler does.
    assert spdy.RstStream(bad, spdy.RST_CANCEL) in frames
    assert [f.stream_id for f in frames if isinstance(f, spdy.SynReply)] == [error, data]
    response = _data(frames, data)
    assert response.startswith(b"HTTP/1.0 200") and response.endswith(body_for("/spdy"))
    assert _data(frames, error) == b""


ATTACH = f"/api/v1/namespaces/{NAMESPACE}/pods/{POD}/attach?stdin=1&stdout=1"


def test_client_leaving_ends_the_attach(front):
    """An attach backend that only waits for the container learns from Session.gone."""
    returned = threading.Event()

    def wait_for_container(session: Session) -> None:
        session.gone.wait(DEADLINE)
        returned.set()
    front.attach = wait_for_container
    ws = _ws(front, ATTACH, "v5.channel.k8s.io")
    assert ws.recv_data() == (wsclient.ABNF.OPCODE_BINARY, b"\x01")   # the streams are up
    ws.sock.shutdown(socket.SHUT_RDWR)     # gone without a close frame
    ws.sock.close()
    assert returned.wait(DEADLINE)


def test_client_leaving_ends_the_command(front):
    """The command's stdin reads EOF when the client drops the connection mid-exec."""
    finished = threading.Event()

    def cat(command: list[str], session: Session) -> int:
        code = run_process(command, session)
        finished.set()
        return code
    front.exec = cat
    try:
        ws = _ws(front, f"/api/v1/namespaces/{NAMESPACE}/pods/{POD}/exec"
                        "?command=cat&stdin=1&stdout=1", "v4.channel.k8s.io")
        ws.send_binary(b"\x00ping\n")
        assert ws.recv_data() == (wsclient.ABNF.OPCODE_BINARY, b"\x01")
        assert ws.recv_data() == (wsclient.ABNF.OPCODE_BINARY, b"\x01ping\n")
        ws.sock.shutdown(socket.SHUT_RDWR)
        ws.sock.close()
        assert finished.wait(DEADLINE)
    finally:
        front.exec = run_process


def test_spdy_streams_not_created_in_time(front):
    front.stream_creation_timeout = 0.2
    try:
        client = SpdyClient(front, EXEC_FAIL, "v4.channel.k8s.io")
        client.open(streamType="error")     # stdout never comes
        frames = client.frames()            # until the server gives up and closes
        client.close()
    finally:
        front.stream_creation_timeout = 30.0
    assert [type(f) for f in frames] == [spdy.SynReply]
