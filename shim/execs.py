"""One exec request (exec probes use it), two ways.

With this installation's runtime (in_process), the shim makes the process itself (Job), born in
the container's PID namespace and cgroup, from the exec plan the runtime wrote at create: C code
in a child sharing the shim's memory until its execve (runtime.exec_process.spawn_planned), no
fork of Python, as forks and the page copies they cause were most of what an exec probe cost.
The shim keeps its output (bounded), kills it when its time is up and answers when it ends.

With any other runtime, a short-lived child of the shim runs `runtime exec --detach` and does
all that itself (run): it makes itself a subreaper, so the process becomes its child once the
runtime exits and its exact wait status (exit code or signal) is known.
"""
from __future__ import annotations

import os
import select
import signal
import time

from cgroups import FROZEN, CgroupError
from linux.syscalls import Syscalls
from runtime import exec_plan, exec_process, sync
from runtime.errors import PycontainerError, StateError
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


class Job:
    """An exec whose process the shim made itself (in_process runtimes): until it ends, its
    output so far, the runtime's report (sync messages, see runtime.sync), its deadline."""

    __slots__ = ("pid", "out", "report", "deadline", "timed_out")

    def __init__(self, runtime: RuntimeCommand, container_id: str, devnull: int,
                 request: Request, birth: tuple[int, int]) -> None:
        """Starts the process from the container's exec plan, born where `birth` says
        (runtime.exec_process.birth_place). BadRequest with the runtime's message when the
        container cannot take an exec (paused), OSError when no process could be made."""
        self.out = _Output()
        ends = [self.out.pipe(0), self.out.pipe(1)]
        self.report, writer = sync.pair()
        self.deadline = None if request.timeout is None else time.monotonic() + request.timeout
        self.timed_out = False
        try:
            try:
                plan = exec_plan.load(runtime.root, container_id)
                if plan.cgroup().freezer_state() == FROZEN:
                    raise StateError("cannot exec in a paused container")
            except (PycontainerError, CgroupError) as e:
                raise BadRequest(str(e)) from None
            self.pid = exec_process.spawn_planned(plan, request.args, request.env, request.cwd,
                                                  (devnull, *ends), writer.fd, birth)
        except BaseException:
            self.close()
            raise
        finally:
            writer.close()
            for fd in ends:
                os.close(fd)

    def expire(self, now: float) -> None:
        """SIGKILL once past the deadline (the process is our child until reaped: no PID reuse)."""
        if not self.timed_out and self.deadline is not None and now >= self.deadline:
            os.kill(self.pid, signal.SIGKILL)
            self.timed_out = True

    def answer(self, status: int, warn) -> dict:
        """The answer for the client, once the process has ended with wait `status`; the
        runtime's warnings go to warn(message)."""
        self.out.drain()
        os.set_blocking(self.report.fd, False)
        error = ""
        for line in read_available(self.report.fd).decode(errors="replace").splitlines():
            tag, _, message = line.partition(" ")
            if tag == sync.ERROR:
                error = message
            elif tag == sync.WARNING:
                warn(message)
        if error and not self.timed_out:
            return protocol.error(error)
        return self.out.result(status, self.timed_out)

    def close(self) -> None:
        for fd in self.out.fds:
            os.close(fd)
        self.out.fds.clear()
        self.report.close()


def _argv(container_id: str, request: Request) -> list[str]:
    """`runtime exec --detach`'s options and arguments for the request."""
    argv = []
    for entry in request.env:
        argv += ["--env", entry]
    if request.cwd:
        argv += ["--cwd", request.cwd]
    return argv + [container_id, *request.args]


def run(runtime: RuntimeCommand, container_id: str, state_dir: str, devnull: int,
        request: Request) -> dict:
    """In a child of the shim: runs the exec through a runtime of its own process to its end;
    returns the answer for the client."""
    become_subreaper(Syscalls())
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    deadline = None if request.timeout is None else time.monotonic() + request.timeout
    pid_file = os.path.join(state_dir, f"exec-{os.getpid()}.pid")
    out = _Output()
    ends = [out.pipe(0), out.pipe(1)]
    try:
        runtime_pid = runtime.spawn(["exec", "--detach", "--pid-file", pid_file,
                                     *_argv(container_id, request)], devnull, *ends)
    finally:
        for fd in ends:
            os.close(fd)
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
    return out.result(status, timed_out)


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

    def result(self, status: int, timed_out: bool) -> dict:
        """The answer for a process that ended with wait `status`."""
        code, sig = code_and_signal(status)
        return {"ok": True, "exit_code": code, "signal": sig, "timed_out": timed_out,
                "stdout": self.data[0].decode(errors="replace"),
                "stderr": self.data[1].decode(errors="replace"), "truncated": self.truncated}

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
