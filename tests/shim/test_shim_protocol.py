"""The control socket's protocol: malformed requests, order of answers, oversized lines."""
from __future__ import annotations

import json
import socket

import pytest

from shim.protocol import MAX_REQUEST


class Raw:
    """A bare connection to a shim: bytes in, JSON lines out."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.reader = self.sock.makefile("rb")

    def ask(self, data: bytes, answers: int = 1) -> list[dict]:
        self.sock.sendall(data)
        return [json.loads(self.reader.readline()) for _ in range(answers)]


@pytest.mark.root
def test_malformed_requests_get_an_error_and_the_shim_serves_on(shims):
    info = shims.start("sleep", "1000")
    raw = Raw(info.socket)
    bad = [
        (b"not json", "not JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"no": "op"}', "op must be one of"),
        (b'{"op": "launch"}', "op must be one of"),
        (b'{"op": "kill", "signal": [9]}', "signal must be int or str"),
        (b'{"op": "kill", "signal": "SIGNOPE"}', "unknown signal"),
        (b'{"op": "kill", "all": "yes"}', "all must be bool"),
        (b'{"op": "exec", "args": "ls"}', "args must be"),
        (b'{"op": "exec", "args": ["ls"], "timeout": -1}', "timeout must be a positive"),
        (b'{"op": "exec", "args": ["ls"], "env": ["NOEQUALS"]}', "env must be"),
        (b"", "not JSON"),
    ]
    for line, message in bad:
        [answer] = raw.ask(line + b"\n")
        assert answer["ok"] is False and message in answer["error"], (line, answer)
        assert answer["error"].startswith("malformed request: ")
    [state] = raw.ask(b'{"op": "state"}\n')
    assert state["ok"] and state["status"] == "running" and state["pid"] == info.container_pid


@pytest.mark.root
def test_answers_keep_the_order_of_requests(shims):
    info = shims.start("sleep", "1000")
    raw = Raw(info.socket)
    answers = raw.ask(b'{"op": "exec", "args": ["echo", "first"]}\n{"op": "state"}\n'
                      b'{"op": "kill", "signal": 9}\n{"op": "wait"}\n{"op": "state"}\n', 5)
    assert answers[0]["stdout"] == "first\n"
    assert answers[1]["status"] == "running"
    assert answers[2] == {"ok": True}
    assert answers[3]["exit"]["signal"] == 9
    assert answers[4]["status"] == "stopped"


@pytest.mark.root
def test_an_oversized_request_closes_only_its_connection(shims):
    info = shims.start("sleep", "1000")
    raw = Raw(info.socket)
    chunk = b"x" * 65536
    try:
        for _ in range(MAX_REQUEST // len(chunk) + 2):
            raw.sock.sendall(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the shim may close before all of it is sent
    answer = json.loads(raw.reader.readline())
    assert answer["ok"] is False and "longer than" in answer["error"]
    try:  # closed: EOF, or a reset since the shim left part of the request unread
        assert raw.reader.readline() == b""
    except ConnectionResetError:
        pass
    [state] = Raw(info.socket).ask(b'{"op": "state"}\n')
    assert state["ok"]
