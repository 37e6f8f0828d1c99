"""The real kubectl 1.37 against cri.streaming (through the test front, over HTTPS): exec,
attach and port-forward over WebSocket (kubectl's default) and over SPDY/3.1."""
from __future__ import annotations

import concurrent.futures
import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
import urllib.request

import pytest

from cri.streaming.backend import Session
from streaming_testlib import KUBECTL, POD, UID, body_for, kubectl, kubectl_env, run_process

TRANSPORTS = [pytest.param(True, id="websocket"), pytest.param(False, id="spdy")]


@pytest.mark.parametrize("websockets", TRANSPORTS)
def test_exec_exit_codes_and_streams(kubeconfig, websockets):
    ok = kubectl(kubeconfig, "exec", POD, "--", "sh", "-c", "echo out; echo err >&2",
                 websockets=websockets)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, b"out\n", b"err\n")

    failed = kubectl(kubeconfig, "exec", POD, "--", "sh", "-c", "echo out; exit 3",
                     websockets=websockets)
    assert failed.returncode == 3
    assert failed.stdout == b"out\n"
    assert failed.stderr == b"command terminated with exit code 3\n"


@pytest.mark.parametrize("websockets", TRANSPORTS)
def test_exec_stdin_piped(kubeconfig, websockets):
    # Far more than a frame, a pipe buffer and a socket buffer: flow control both ways.
    data = b"".join(b"line %d of the input\n" % i for i in range(40000))
    result = kubectl(kubeconfig, "exec", "-i", POD, "--", "tr", "a-z", "A-Z",
                     websockets=websockets, stdin=data)
    assert result.returncode == 0, result.stderr
    assert result.stdout == data.upper()


@pytest.mark.parametrize("websockets", TRANSPORTS)
def test_exec_command_that_cannot_run(kubeconfig, websockets):
    result = kubectl(kubeconfig, "exec", POD, "--", "/nonexistent/tool", websockets=websockets)
    assert result.returncode == 1
    assert result.stderr.decode() == (
        "error: Internal error occurred: error executing command in container: "
        'exec: "/nonexistent/tool": no such file or directory\n')


@pytest.mark.parametrize("websockets", TRANSPORTS)
def test_attach_stdin(front, kubeconfig, websockets):
    front.attach = lambda session: run_process(["tr", "a-z", "A-Z"], session) and None
    result = kubectl(kubeconfig, "attach", "-i", POD, websockets=websockets, stdin=b"hello\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"HELLO\n"


class PortForward:
    """A running `kubectl port-forward` to `remote`, on the local port it prints."""

    def __init__(self, kubeconfig, remote: int, websockets: bool) -> None:
        self.proc = subprocess.Popen(
            [str(KUBECTL), "port-forward", "--address", "127.0.0.1", POD, f":{remote}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=kubectl_env(kubeconfig, websockets))
        line = self.proc.stdout.readline().decode()   # ends when kubectl listens, or exits
        match = re.search(r"Forwarding from 127\.0\.0\.1:(\d+)", line)
        if match is None:
            self.stop()
            raise AssertionError(f"kubectl port-forward: {line!r} {self.stderr!r}")
        self.port = int(match.group(1))

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=30) as r:
            return r.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        _, err = self.proc.communicate(timeout=30)
        self.stderr = err.decode()


@pytest.mark.parametrize("websockets", TRANSPORTS)
def test_port_forward_parallel_requests(kubeconfig, web, websockets):
    forward = PortForward(kubeconfig, web.port, websockets)
    try:
        paths = [f"/request-{i}" for i in range(12)]
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            bodies = list(pool.map(forward.get, paths))
    finally:
        forward.stop()
    assert bodies == [body_for(p) for p in paths]


@pytest.mark.parametrize("websockets", TRANSPORTS)
def test_port_forward_refused_port(kubeconfig, closed_port, websockets):
    forward = PortForward(kubeconfig, closed_port, websockets)
    try:
        with pytest.raises(OSError):
            forward.get("/")
    finally:
        forward.stop()
    assert (f"error forwarding port {closed_port} to pod {POD}, uid {UID}: "
            f"dial tcp4 127.0.0.1:{closed_port}: connect: connection refused") in forward.stderr


@pytest.mark.parametrize("websockets", TRANSPORTS)
def test_exec_tty_sends_the_terminal_size(front, kubeconfig, websockets):
    def report_size(command: list[str], session: Session) -> int:
        size = session.resizes.get(timeout=30)
        report = f"size={size.width}x{size.height} stderr={session.stderr}\n"
        os.write(session.stdout, report.encode())
        return 0
    front.exec = report_size
    master, slave = pty.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        proc = subprocess.Popen([str(KUBECTL), "exec", "-it", POD, "--", "sh"], stdin=slave,
                                stdout=slave, stderr=slave, env=kubectl_env(kubeconfig, websockets))
        os.close(slave)
        slave = -1
        output = _read_terminal(master)
        assert proc.wait(timeout=30) == 0, output
    finally:
        front.exec = run_process
        os.close(master)
        if slave >= 0:
            os.close(slave)
    assert b"size=100x30 stderr=None" in output


def _read_terminal(master: int) -> bytes:
    """What the terminal shows until its last writer closes it (bounded)."""
    output = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], deadline - time.monotonic())
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:     # EIO: no process holds the terminal any more
            break
        if not chunk:
            break
        output += chunk
    return output
