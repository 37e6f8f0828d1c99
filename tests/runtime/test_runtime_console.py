"""Terminals: the pty master sent over --console-socket, as conmon and the containerd shim
receive it."""
from __future__ import annotations

import os
import socket
import subprocess

import pytest

from runtime_waits import read_to_end, read_until
from testlib.console import console_socket as listening

pytestmark = pytest.mark.root


@pytest.fixture
def console_socket(tmp_path):
    with listening(str(tmp_path / "console.sock"), timeout=30) as console:
        yield console


def receive_master(server: socket.socket) -> tuple[int, bytes]:
    try:
        conn, _ = server.accept()
    except socket.timeout:
        pytest.fail("the runtime never connected to --console-socket")
    with conn:
        msg, fds, _, _ = socket.recv_fds(conn, 4096, 1)
    return fds[0], msg


def test_console_socket_gives_a_working_tty(runtime, bundle, console_socket):
    path, server = console_socket
    bundle.process("sh", "-c", "tty; stty size; read line; echo got:$line", terminal=True,
                   consoleSize={"height": 40, "width": 120})
    cid = runtime.new_id()
    out = runtime.run("run", "-d", "--console-socket", path, "-b", bundle.path, cid)
    assert out.returncode == 0, out.stderr
    master, name = receive_master(server)
    try:
        assert name == b"/dev/ptmx"
        # Typed once the size is printed: the terminal echoes what is typed when it is typed.
        text = read_until(master, b"40 120", "the tty's size from stty")
        os.write(master, b"hello\n")
        text += read_to_end(master, "the echo of the typed line")
        text = text.decode().replace("\r", "")
    finally:
        os.close(master)
    assert text.splitlines() == ["/dev/pts/0", "40 120", "hello", "got:hello"]


def test_exec_tty_through_console_socket(runtime, bundle, console_socket):
    path, server = console_socket
    bundle.process("sleep", "60")
    cid = runtime.new_id()
    runtime.run("run", "-d", "-b", bundle.path, cid, capture_output=False,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = runtime.run("exec", "-t", "-d", "--console-socket", path, cid, "tty")
    assert out.returncode == 0, out.stderr
    master, _ = receive_master(server)
    try:
        assert read_to_end(master, "the exec's tty output").strip() == b"/dev/pts/0"
    finally:
        os.close(master)


def test_foreground_run_relays_the_terminal(runtime, bundle):
    """`run` with terminal: true and no --console-socket holds the pty itself, like runc."""
    bundle.process("sh", "-c", "tty; exit 5", terminal=True)
    out = subprocess.run(["script", "-qec", " ".join(runtime.argv("run", "-b", bundle.path,
                                                                   runtime.new_id())), "/dev/null"],
                         capture_output=True, timeout=30)
    assert b"/dev/pts/0" in out.stdout
    assert out.returncode == 5


def test_terminal_without_console_socket_when_detached_is_refused(runtime, bundle):
    bundle.process("true", terminal=True)
    cid = runtime.new_id()
    out = runtime.run("create", "-b", bundle.path, cid)
    assert out.returncode == 1 and b"console-socket" in out.stderr
    assert runtime.leftovers(cid) == []
