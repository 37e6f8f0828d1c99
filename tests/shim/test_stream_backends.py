"""The exec, attach and port-forward backends of the CRI (cri.exec_stream, cri.attach,
cri.port_forward) against the streaming contract (cri.streaming.backend.Session: plain pipes
here, as the protocols hand them), on real busybox containers under real shims."""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from cri import attach, exec_stream, port_forward
from cri.streaming.backend import Session, StreamError, TerminalSize
from shim.runtime_cli import RuntimeCommand
from shim_testlib import PYCONTAINER, alive, wait_for


class Pipes:
    """A session's streams as pipes: the test's ends and the backend's."""

    def __init__(self, stdin: bool = True, stderr: bool = True, tty: bool = False) -> None:
        self.fds: list[int] = []
        self.stdin_r, self.stdin_w = self._pipe() if stdin else (None, None)
        self.out_r, self.out_w = self._pipe()
        self.err_r, self.err_w = self._pipe() if stderr and not tty else (None, None)
        self.session = Session(self.stdin_r, self.out_w, self.err_w, tty)
        self.result: list = []

    def _pipe(self) -> tuple[int, int]:
        r, w = os.pipe()
        self.fds += [r, w]
        return r, w

    def run(self, backend, *args) -> threading.Thread:
        def body() -> None:
            try:
                self.result.append(backend(*args, self.session))
            except StreamError as e:
                self.result.append(e)
        thread = threading.Thread(target=body, daemon=True)
        thread.start()
        return thread

    def finish(self, thread: threading.Thread) -> tuple[object, bytes, bytes]:
        """Waits for the backend, then closes its ends (as the protocol side does) and reads
        what came."""
        thread.join(30)
        assert not thread.is_alive(), "the backend did not return"
        for fd in (self.stdin_r, self.out_w, self.err_w):
            if fd is not None:
                os.close(fd)
                self.fds.remove(fd)
        out = _read_all(self.out_r)
        err = _read_all(self.err_r) if self.err_r is not None else b""
        return self.result[0], out, err

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture
def pipes():
    made: list[Pipes] = []

    def make(**kw) -> Pipes:
        p = Pipes(**kw)
        made.append(p)
        return p
    yield make
    for p in made:
        p.close()


def _runtime(shims) -> RuntimeCommand:
    return RuntimeCommand(PYCONTAINER, shims.roots.runtime_root,
                          os.path.join(shims.tmp, "rt.log"))


def _exec_processes(container_pid: int) -> list[int]:
    """The container's processes other than its init (exec'd ones), by the init's cgroup."""
    with open(f"/proc/{container_pid}/cgroup") as f:
        cgroup = f.read().splitlines()[-1].split(":", 2)[2]
    for base in ("/sys/fs/cgroup", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/memory"):
        path = base + cgroup + "/cgroup.procs"
        if os.path.exists(path):
            with open(path) as f:
                return [int(p) for p in f.read().split() if int(p) != container_pid]
    raise AssertionError(f"no cgroup.procs for {cgroup}")


def test_exec_streams_and_exit_codes(shims, pipes):
    info = shims.start("sleep", "1000")
    p = pipes()
    thread = p.run(exec_stream.run, _runtime(shims), info.id,
                   ["sh", "-c", "cat; echo to-err >&2; exit 3"])
    os.write(p.stdin_w, b"piped in\n")
    os.close(p.stdin_w)
    p.fds.remove(p.stdin_w)
    code, out, err = p.finish(thread)
    assert (code, out, err) == (3, b"piped in\n", b"to-err\n")
    q = pipes(stdin=False)
    code, out, _ = q.finish(q.run(exec_stream.run, _runtime(shims), info.id,
                                  ["sh", "-c", "kill -TERM $$"]))
    assert code == 128 + 15


def test_exec_of_a_missing_command_is_one_line(shims, pipes):
    info = shims.start("sleep", "1000")
    p = pipes(stdin=False)
    error, out, err = p.finish(p.run(exec_stream.run, _runtime(shims), info.id,
                                     ["no-such-command"]))
    assert isinstance(error, StreamError)
    assert "no-such-command" in str(error) and "\n" not in str(error)
    assert (out, err) == (b"", b"")


def test_exec_with_a_terminal_and_resize(shims, pipes):
    info = shims.start("sleep", "1000")
    p = pipes(tty=True)
    thread = p.run(exec_stream.run, _runtime(shims), info.id,
                   ["sh", "-c", "read go; stty size; tty; exit 5"])
    p.session.resizes.put(TerminalSize(width=101, height=33))
    # the resize is applied before the line that lets the command go on
    wait_for(lambda: p.session.resizes.empty(), what="the resize taken")
    os.write(p.stdin_w, b"go\n")
    code, out, _ = p.finish(thread)
    assert code == 5
    assert b"33 101" in out and b"/dev/pts/" in out


def test_exec_ends_when_the_client_goes(shims, pipes):
    info = shims.start("sleep", "1000")
    p = pipes(stdin=False)
    thread = p.run(exec_stream.run, _runtime(shims), info.id, ["sleep", "1000"])
    wait_for(lambda: _exec_processes(info.container_pid), what="the exec'd process")
    for fd in (p.out_r, p.err_r):  # the client goes: its read ends close
        os.close(fd)
        p.fds.remove(fd)
    thread.join(30)
    assert not thread.is_alive()
    wait_for(lambda: not _exec_processes(info.container_pid), what="the process killed")


def test_attach_relays_output_and_stdin(shims, pipes, tmp_path):
    fifo = str(tmp_path / "stdin")
    os.mkfifo(fifo)
    info = shims.start("sh", "-c", "while read l; do echo out $l; echo err $l >&2; done",
                       stdin=fifo, stdin_once=True)
    p = pipes()
    thread = p.run(attach.run, shims.roots.shim_root, info.id, fifo)
    os.write(p.stdin_w, b"a\nb\n")
    os.close(p.stdin_w)  # stdinOnce: the container reads EOF and ends; the attach with it
    p.fds.remove(p.stdin_w)
    result, out, err = p.finish(thread)
    assert result is None
    assert (out, err) == (b"out a\nout b\n", b"err a\nerr b\n")


def test_attach_ends_when_the_client_goes(shims, pipes):
    info = shims.start("sleep", "1000")
    p = pipes(stdin=False)
    thread = p.run(attach.run, shims.roots.shim_root, info.id, None)
    for fd in (p.out_r, p.err_r):
        os.close(fd)
        p.fds.remove(fd)
    thread.join(30)
    assert not thread.is_alive()
    with shims.connect(info.id) as c:
        assert c.state().status == "running"


def test_attach_to_an_exited_container(shims, pipes):
    info = shims.start("true")
    with shims.connect(info.id) as c:
        c.wait(timeout=10)
    p = pipes(stdin=False)
    error, _, _ = p.finish(p.run(attach.run, shims.roots.shim_root, info.id, None))
    assert isinstance(error, StreamError) and "has exited" in str(error)


_LISTENER = """
import os, socket, sys
os.system("ip link set lo up")
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 8080))
s.listen(8)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.sendall(b"hello from the namespace\\n")
    c.close()
"""


def test_port_forward_dials_inside_the_namespace():
    listener = subprocess.Popen(["unshare", "-n", sys.executable, "-c", _LISTENER],
                                stdout=subprocess.PIPE)
    try:
        assert listener.stdout.readline() == b"ready\n"
        netns = f"/proc/{listener.pid}/ns/net"
        with port_forward.dial(netns, "sb1", 8080) as sock:
            assert sock.recv(100) == b"hello from the namespace\n"
        with pytest.raises(StreamError) as refused:
            port_forward.dial(netns, "sb1", 8081)
        assert str(refused.value).startswith(
            'failed to connect to localhost:8081 inside namespace "sb1", IPv4: dial tcp4 '
            "127.0.0.1:8081: connect: connection refused IPv6 dial tcp6 [::1]:8081: connect: ")
        with pytest.raises(StreamError, match="invalid port 0"):
            port_forward.dial(netns, "sb1", 0)
    finally:
        listener.kill()
        listener.wait()
        listener.stdout.close()
    assert not alive(listener.pid)
