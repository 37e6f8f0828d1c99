"""One exec request (exec probes use it), run in a short-lived child of the shim: `runtime exec
--detach` (in that child itself when the runtime is this installation's) starts the process in
the container, the child keeps its output (bounded), waits for its end, kills it when its time
is up, and answers the client itself.

The child makes itself a subreaper, so the process becomes its child once the runtime exits and
its exact wait status (exit code or signal) is known. Run in a child so that the long-lived shim
never executes (and copies the memory of) this code.
"""
from __future__ import annotations

import os
import select
import signal
import time

from linux.syscalls import Syscalls
from runtime.foreground import become_subreaper
from shim import protocol
from shim.exitfile import code_and_signal
from shim.protocol import EXEC_OUTPUT_LIMIT, BadRequest
from shim.runtime_cli import RuntimeCommand, error_line, read_available


class Request:
    """A checked exec request."""

    __slots__ = ("args", "env", "cwd", "timeout")

    def __init__(self, request: dict) -> None:
        args = protocol.field(request, "args", list, None)
        if not args or not all(isinstance(a, str) for a in args):
            raise BadRequest("malformed request: args must be a non-empty list of strings")
        env = protocol.field(request, "env", list, [])
        if not all(isinstance(e, str) and "=" in e for e in env):
            raise BadRequest("malformed request: env must be a list of \"NAME=VALUE\" strings")
        timeout = protocol.field(request, "timeout", (int, float), None)
        if timeout is not None and timeout <= 0:
            raise BadRequest("malformed request: timeout must be a positive number of seconds")
        self.args = args
        self.env = env
        self.cwd = protocol.field(request, "cwd", str, None)
        self.timeout = timeout


def run(runtime: RuntimeCommand, container_id: str, state_dir: str, devnull: int,
        request: Request) -> dict:
    """Runs the exec to its end; returns the answer for the client."""
    become_subreaper(Syscalls())
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    deadline = None if request.timeout is None else time.monotonic() + request.timeout
    argv = []
    for entry in request.env:
        argv += ["--env", entry]
    if request.cwd:
        argv += ["--cwd", request.cwd]
    argv += [container_id, *request.args]
    out = _Output()
    ends = [out.pipe(0), out.pipe(1)]
    try:
        if runtime.in_process:
            if deadline is not None:
                # a runtime stuck on, say, a frozen container ends this child at the deadline
                signal.setitimer(signal.ITIMER_REAL, max(deadline - time.monotonic(), 0.001))
            pid = runtime.exec_here(argv, devnull, *ends)
            timed_out, status = False, 0 if pid else 1 << 8   # as the wait status _wait gives
            signal.setitimer(signal.ITIMER_REAL, 0)
        else:
            pid_file = os.path.join(state_dir, f"exec-{os.getpid()}.pid")
            runtime_pid = runtime.spawn(["exec", "--detach", "--pid-file", pid_file, *argv],
                                        devnull, *ends)
    finally:
        for fd in ends:
            os.close(fd)
    if not runtime.in_process:
        timed_out, status = _wait(runtime_pid, out, deadline)
        pid = _read_pid_file(pid_file)
    if pid and (status == 0 or timed_out):
        if timed_out:
            os.kill(pid, signal.SIGKILL)  # our child since the runtime exited: no PID reuse
        late, status = _wait(pid, out, None if timed_out else deadline)
        timed_out = timed_out or late
    elif not timed_out:
        out.drain()
        return protocol.error(error_line("exec", status, bytes(out.data[1])))
    else:
        status = signal.SIGKILL  # killed before the process started: the wait status it'd have
    out.drain()
    code, sig = code_and_signal(status)
    return {"ok": True, "exit_code": code, "signal": sig, "timed_out": timed_out,
            "stdout": out.data[0].decode(errors="replace"),
            "stderr": out.data[1].decode(errors="replace"), "truncated": out.truncated}


def _wait(pid: int, out: _Output, deadline: float | None) -> tuple[bool, int]:
    """Keeps reading the output until our child `pid` ends; SIGKILL at the deadline.
    Returns (whether the deadline killed it, its wait status)."""
    pidfd = os.pidfd_open(pid)
    timed_out = False
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        for fd in out.fds:
            poller.register(fd, select.POLLIN)
        while True:
            wait_ms = -1
            if deadline is not None:
                wait_ms = max(0, int((deadline - time.monotonic()) * 1000) + 1)
            ready = {fd for fd, _ in poller.poll(wait_ms)}
            if pidfd in ready:
                break
            for fd in ready:
                if not out.read(fd):
                    poller.unregister(fd)
            if deadline is not None and time.monotonic() >= deadline:
                os.kill(pid, signal.SIGKILL)
                timed_out = True
                deadline = None
    finally:
        os.close(pidfd)
    return timed_out, os.waitpid(pid, 0)[1]


class _Output:
    """The process's stdout (0) and stderr (1), up to EXEC_OUTPUT_LIMIT bytes each."""

    __slots__ = ("fds", "data", "truncated")

    def __init__(self) -> None:
        self.fds: dict[int, int] = {}  # our read end -> 0 or 1
        self.data = [bytearray(), bytearray()]
        self.truncated = False

    def pipe(self, index: int) -> int:
        """A new pipe for stream `index`; returns the write end for the process."""
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        self.fds[read_end] = index
        return write_end

    def read(self, fd: int) -> bool:
        """Keeps what fd has now; False at its end."""
        data = read_available(fd)
        self._keep(self.fds[fd], data)
        return bool(data)

    def drain(self) -> None:
        for fd, index in self.fds.items():
            self._keep(index, read_available(fd))

    def _keep(self, index: int, data: bytes) -> None:
        buf = self.data[index]
        room = EXEC_OUTPUT_LIMIT - len(buf)
        if len(data) > room:
            self.truncated = True
            data = data[:max(room, 0)]
        buf += data


def _read_pid_file(path: str) -> int:
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
