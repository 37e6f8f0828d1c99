"""The shim process of one container: the container's parent and subreaper, the owner of its
stdio (the CRI log), the keeper of its exit record, the server of its control socket
(shim.protocol), until told to shut down.

It runs in a process the zygote forked (in a session of its own, reparented away from whoever
asked for it), as one thread around one poll(2) loop. Memory is the design constraint: the shim
shares the zygote's pages and keeps private only what it touches, so it does as little as
possible itself. Whatever takes more code (starting the container, an exec through another
runtime than this installation's, `kill --all`, the final `delete`) runs in a short-lived child
("helper") that answers the client itself; the shim stops reading that client until the helper
is gone, so answers keep the order of requests. An exec through this installation's runtime is
cheaper still (exec probes run every few seconds in every pod): the shim forks the process
itself, which runs the runtime's code up to its execve, and answers when it ends (shim.execs).

Attached clients (the attach op) get the container's output as it goes to the log; the shim
never waits for them: each has a bounded buffer, and what does not fit is dropped for it.
"""
from __future__ import annotations

import os
import select
import time

import _signal
import _socket

from linux import constants as lx
from linux.syscalls import Syscalls
from overlay.timefmt import rfc3339_nano
from runtime import signals
from runtime.errors import PycontainerError
from shim import execs, exitfile, layout, oom, protocol, startup
from shim.criolog import STDERR, STDOUT, CriLog
from shim.protocol import BadRequest
from shim.runtime_cli import RuntimeCommand, error_line, read_available
from shim.stdin_relay import StdinRelay

# How long a client may take to read an answer before the shim drops it.
_SEND_TIMEOUT = 5.0


def serve(caller: int) -> None:
    """The shim's whole life, from the caller's connection (its start request still unread) to
    shutdown. The start helper reads the request, starts the container and answers the caller;
    this process only takes over what the helper hands it. Never returns."""
    Syscalls().prctl(lx.PR_SET_CHILD_SUBREAPER, 1)  # before the helper runs `create`
    ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    helper = os.fork()
    if helper == 0:
        ours.close()
        _helper_exit(lambda: startup.run(caller, theirs))
    theirs.close()
    os.close(caller)
    report, fds = receive(ours)
    if not report.get("ok"):
        os._exit(1)  # the helper waits for our exit, then undoes the rest and answers
    ours.close()
    os.waitpid(helper, 0)
    shim = Shim(report, dict(zip(report["fds"], fds)))
    Syscalls().set_name(f"shim-{shim.id}")
    shim.loop()
    os._exit(0)


def receive(sock) -> tuple[dict, list[int]]:
    """The start helper's report and descriptors (one SCM_RIGHTS message)."""
    data, ancillary, _, _ = sock.recvmsg(65536, _socket.CMSG_SPACE(64 * 4),
                                         _socket.MSG_CMSG_CLOEXEC)
    fds = []
    for level, kind, payload in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            for i in range(0, len(payload), 4):  # no comprehension: a function object per call
                fds.append(int.from_bytes(payload[i:i + 4], "little"))
    try:
        report = protocol.decode(data) if data else {}
    except ValueError:
        report = {}
    return report, fds


def _send(sock, message: dict) -> bool:
    try:
        sock.settimeout(_SEND_TIMEOUT)
        sock.sendall(protocol.encode(message))
        return True
    except OSError:
        return False


class ClientConnection:
    """One connection a client opened to this shim: its unread bytes, and whether it closed."""

    __slots__ = ("sock", "buf", "closed")

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.closed = False

    def send(self, message: dict) -> None:
        if not self.closed:
            self.closed = not _send(self.sock, message)
            self.sock.setblocking(False)


class Attacher:
    """An attached client: its socket, the output it has yet to take, whether to close it once
    that is out (the container has exited)."""

    __slots__ = ("sock", "pending", "closing")

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        self.pending = bytearray()
        self.closing = False


class Shim:
    __slots__ = (
        "id", "state_dir", "runtime", "log_path", "devnull", "init_pid", "started_at", "exit",
        "cgroup", "oom_base", "log", "streams", "relay", "poller", "handlers", "listener",
        "clients", "waiters", "children", "shutdown_client", "done", "terminal", "attachers",
        "exec_birth", "jobs")

    def __init__(self, report: dict, fds: dict[str, int]) -> None:
        """From the start helper's report and descriptors (shim.startup)."""
        self.id = report["id"]
        self.state_dir = report["state_dir"]
        self.runtime = RuntimeCommand(report["runtime"], report["runtime_root"],
                                      self.state_dir + "/" + layout.RUNTIME_LOG,
                                      report["in_process"])
        self.log_path = report["log_path"]
        self.init_pid = report["pid"]
        self.cgroup = report["cgroup"]
        self.oom_base = report["oom_base"]
        self.started_at = report["started_at"]
        self.exit: dict | None = None
        self.devnull = fds["devnull"]
        os.dup2(fds["shim_log"], 2)  # a crash's traceback lands there
        os.close(fds["shim_log"])
        self.log = CriLog(self.log_path, fds["log"]) if "log" in fds else None
        self.streams: dict[int, bytes] = {}
        for name, tag in (("stdout", STDOUT), ("stderr", STDERR)):
            if name in fds:
                self.streams[fds[name]] = tag
        # With a terminal, "stdout" is its master; fds["stdin_hold"] (a writer of the stdin
        # fifo, for stdin without stdinOnce) just stays open for the shim's life.
        self.terminal = fds["stdout"] if report.get("tty") else -1
        self.attachers: dict[int, Attacher] = {}
        self.relay = StdinRelay(fds["stdin_fifo"], fds["stdin_out"]) if "stdin_fifo" in fds \
            else None
        self.listener = _socket.socket(fileno=fds["listener"])
        self.listener.setblocking(False)
        self.poller = select.poll()
        self.handlers: dict[int, object] = {}
        self.clients: dict[int, ClientConnection] = {}
        self.waiters: list[ClientConnection] = []
        self.children: dict[int, object] = {}  # helper PID -> what to do with its wait status
        self.shutdown_client: ClientConnection | None = None
        self.done = False
        # Where an exec's process is born (runtime.exec_process.birth_place), for in_process
        # runtimes; the execs whose process runs, by PID.
        self.exec_birth = (fds.get("exec_pid_ns", -1), fds.get("exec_cgroup", -1))
        self.jobs: dict[int, execs.Job] = {}

    # -- the loop ----------------------------------------------------------------------------

    def loop(self) -> None:
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        _signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        # _signal, not signal: its wrapper converts to and from enums, code run for nothing.
        _signal.signal(_signal.SIGCHLD, _ignore)
        self.watch(wake_r, self._on_sigchld)
        self.watch(self.listener.fileno(), self._on_connect)
        for fd in self.streams:
            self.watch(fd, self._on_output)
        if self.relay:
            self._watch_stdin()
        self._reap()  # whatever ended before the handler was there
        while not self.done:
            for fd, events in self.poller.poll(self._next_deadline_ms()):
                handler = self.handlers.get(fd)
                if handler is not None:
                    handler(fd, events)
            if self.jobs:
                now = time.monotonic()
                for job in self.jobs.values():
                    job.expire(now)

    def _next_deadline_ms(self) -> int:
        """poll's timeout: until the nearest exec deadline, else none."""
        deadlines = [job.deadline for job in self.jobs.values()
                     if job.deadline is not None and not job.timed_out]
        if not deadlines:
            return -1
        return max(0, int((min(deadlines) - time.monotonic()) * 1000) + 1)

    def watch(self, fd: int, handler, events: int = select.POLLIN) -> None:
        self.handlers[fd] = handler
        self.poller.register(fd, events)

    def unwatch(self, fd: int) -> None:
        if self.handlers.pop(fd, None) is not None:
            self.poller.unregister(fd)

    # -- children ----------------------------------------------------------------------------

    def _on_sigchld(self, fd: int, events: int) -> None:
        read_available(fd)
        self._reap()

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.init_pid and self.exit is None:
                self._container_exited(status)
            elif (then := self.children.pop(pid, None)) is not None:
                then(status)
            # else: an orphan of the container, reaped and forgotten

    def _container_exited(self, status: int) -> None:
        self._drain_output()
        finished_at = rfc3339_nano()
        # The record (the cgroup's OOM count, the file) is written by a helper, waited for
        # here: the shim lives on after its container, and without that code in its pages.
        helper = os.fork()
        if helper == 0:
            _helper_exit(lambda: self._write_exit(status, finished_at))
        os.waitpid(helper, 0)
        # Without the file (the helper failed: its trace is in shim.log), the clients still hear.
        self.exit = exitfile.read(self.state_dir) or exitfile.record(
            self.init_pid, status, False, self.started_at, finished_at)
        waiters, self.waiters = self.waiters, []
        for client in waiters:
            client.send({"ok": True, "exit": self.exit})
            self._resume(client)
        for attacher in list(self.attachers.values()):
            attacher.closing = True
            if not attacher.pending:
                self._detach(attacher)

    def _write_exit(self, status: int, finished_at: str) -> None:
        oom_killed = oom.kill_count(self.cgroup) > self.oom_base
        exitfile.write(self.state_dir, exitfile.record(self.init_pid, status, oom_killed,
                                                       self.started_at, finished_at))

    def _helper(self, client: ClientConnection, job, then=None) -> None:
        """Runs job() -> exit status in a child that answers `client` itself; the client's next
        request is read once the child is gone. then(wait status) runs after it."""
        self._pause(client)
        pid = os.fork()
        if pid == 0:
            _helper_exit(job)

        def finished(status: int) -> None:
            self._resume(client)
            if then is not None:
                then(status)

        self.children[pid] = finished

    # -- the container's output and input ----------------------------------------------------

    def _on_output(self, fd: int, events: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: every holder of the terminal's other end is gone
            data = b""
        if data:
            if self.log:
                self.log.write(self.streams[fd], data)
            self._fan_out(self.streams[fd], data)
        else:
            self._close_stream(fd)

    def _drain_output(self) -> None:
        """What the container wrote before it ended, into the log before its exit is told."""
        for fd, name in self.streams.items():
            data = read_available(fd, 1 << 20)
            if data and self.log:
                self.log.write(name, data)
            if data:
                self._fan_out(name, data)

    def _close_stream(self, fd: int) -> None:
        self.unwatch(fd)
        os.close(fd)
        name = self.streams.pop(fd)
        if self.log and name not in self.streams.values():
            self.log.finish(name)

    def _watch_stdin(self) -> None:
        fd, events = self.relay.watch()
        self.watch(fd, self._on_stdin, events)

    def _on_stdin(self, fd: int, events: int) -> None:
        self.unwatch(fd)
        if self.relay.ready():
            self._watch_stdin()
        else:
            self.relay.close()
            self.relay = None

    # -- attached clients --------------------------------------------------------------------

    def _fan_out(self, stream: bytes, data: bytes) -> None:
        if not self.attachers:
            return
        frame = protocol.frame(
            protocol.STDOUT_FRAME if stream == b"stdout" else protocol.STDERR_FRAME, data)
        for attacher in list(self.attachers.values()):
            if attacher.pending:
                if len(attacher.pending) + len(frame) <= protocol.ATTACH_BUFFER:
                    attacher.pending += frame
                continue  # else dropped for this attacher (whole frames: the framing holds)
            try:
                sent = attacher.sock.send(frame)
            except BlockingIOError:
                sent = 0
            except OSError:
                self._detach(attacher)
                continue
            if sent < len(frame):
                attacher.pending += frame[sent:]
                self.poller.modify(attacher.sock.fileno(), select.POLLIN | select.POLLOUT)

    def _on_attacher(self, fd: int, events: int) -> None:
        attacher = self.attachers[fd]
        if events & (select.POLLIN | select.POLLHUP | select.POLLERR):
            try:
                gone = not attacher.sock.recv(65536)  # what it sends is ignored; EOF detaches
            except BlockingIOError:
                gone = False
            except OSError:
                gone = True
            if gone:
                self._detach(attacher)
                return
        if events & select.POLLOUT and attacher.pending:
            try:
                del attacher.pending[:attacher.sock.send(attacher.pending)]
            except BlockingIOError:
                pass
            except OSError:
                self._detach(attacher)
                return
            if not attacher.pending:
                if attacher.closing:
                    self._detach(attacher)
                else:
                    self.poller.modify(fd, select.POLLIN)

    def _detach(self, attacher: Attacher) -> None:
        fd = attacher.sock.fileno()
        if self.attachers.pop(fd, None) is not None:
            self.unwatch(fd)
        attacher.sock.close()

    # -- clients -----------------------------------------------------------------------------

    def _on_connect(self, fd: int, events: int) -> None:
        try:
            client_fd, _ = self.listener._accept()  # the C calls, no Python-level wrapper
        except BlockingIOError:
            return
        sock = _socket.socket(fileno=client_fd)
        sock.setblocking(False)
        self.clients[client_fd] = ClientConnection(sock)
        self.watch(client_fd, self._on_request)

    def _on_request(self, fd: int, events: int) -> None:
        client = self.clients[fd]
        try:
            data = client.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data or client.closed:
            self._drop(client)
            return
        client.buf += data
        self._process(client)

    def _process(self, client: ClientConnection) -> None:
        """Answers the complete request lines buffered, in order, until one has to wait."""
        fd = client.sock.fileno()
        while b"\n" in client.buf and self.handlers.get(fd) == self._on_request \
                and not client.closed:
            line, client.buf = client.buf.split(b"\n", 1)
            self._handle(client, line)
        if len(client.buf) > protocol.MAX_REQUEST:
            client.send(protocol.error(f"malformed request: longer than {protocol.MAX_REQUEST} "
                                       "bytes"))
            self._drop(client)
        elif client.closed:
            self._drop(client)

    def _pause(self, client: ClientConnection) -> None:
        """Stops reading the client until its pending answer is out; a hangup still drops it."""
        fd = client.sock.fileno()
        self.unwatch(fd)
        self.watch(fd, self._on_paused, 0)  # poll reports POLLHUP and POLLERR anyway

    def _on_paused(self, fd: int, events: int) -> None:
        self._drop(self.clients[fd])

    def _resume(self, client: ClientConnection) -> None:
        if client.closed:
            return
        fd = client.sock.fileno()
        self.unwatch(fd)
        self.watch(fd, self._on_request)
        self._process(client)

    def _drop(self, client: ClientConnection) -> None:
        fd = client.sock.fileno()
        if fd >= 0:
            self.unwatch(fd)
            self.clients.pop(fd, None)
        client.closed = True
        client.sock.close()
        if client in self.waiters:
            self.waiters.remove(client)

    def _handle(self, client: ClientConnection, line: bytes) -> None:
        try:
            request = protocol.parse(line)
            getattr(self, "_op_" + request["op"])(client, request)
        except BadRequest as e:
            client.send(protocol.error(str(e)))

    # -- operations (see shim.protocol) -------------------------------------------------------

    def _op_state(self, client: ClientConnection, request: dict) -> None:
        client.send({"ok": True, "id": self.id,
                     "status": "stopped" if self.exit else "running", "pid": self.init_pid,
                     "shim_pid": os.getpid(), "started_at": self.started_at, "exit": self.exit})

    def _op_kill(self, client: ClientConnection, request: dict) -> None:
        value = protocol.field(request, "signal", (int, str), 15)
        try:
            sig = signals.parse(str(value))
        except PycontainerError as e:
            raise BadRequest(f"malformed request: {e}") from None
        everything = protocol.field(request, "all", bool, False)
        if self.exit is not None:
            client.send(protocol.error(f"container {self.id} has exited"))
        elif everything:
            self._helper(client, lambda: self._runtime_job(
                client, ["kill", "--all", self.id, str(sig)], answer_ok=True))
        else:
            # The init is our child until we reap it: its PID cannot be someone else's yet.
            os.kill(self.init_pid, sig)
            client.send({"ok": True})

    def _op_wait(self, client: ClientConnection, request: dict) -> None:
        if self.exit is not None:
            client.send({"ok": True, "exit": self.exit})
        else:
            self._pause(client)
            self.waiters.append(client)

    def _op_exec(self, client: ClientConnection, request: dict) -> None:
        checked = execs.Request(request)
        if self.exit is not None:
            client.send(protocol.error(f"container {self.id} has exited"))
            return
        if not self.runtime.in_process:
            self._helper(client, lambda: client.send(execs.run(
                self.runtime, self.id, self.state_dir, self.devnull, checked)))
            return
        try:
            job = execs.Job(self.runtime, self.id, self.devnull, checked, self.exec_birth)
        except OSError as e:
            client.send(protocol.error(f"exec: {e.strerror or e}"))
            return
        self._pause(client)
        self.jobs[job.pid] = job
        for fd in job.out.fds:
            self.watch(fd, self._on_exec_output)
        self.children[job.pid] = lambda status: self._exec_ended(client, job, status)

    def _on_exec_output(self, fd: int, events: int) -> None:
        for job in self.jobs.values():
            if fd in job.out.fds:
                if not job.out.read(fd):
                    self.unwatch(fd)  # closed with the job
                return

    def _exec_ended(self, client: ClientConnection, job: execs.Job, status: int) -> None:
        del self.jobs[job.pid]
        for fd in job.out.fds:
            self.unwatch(fd)
        answer = job.answer(status, self._runtime_warning)
        job.close()
        client.send(answer)
        self._resume(client)

    def _runtime_warning(self, message: str) -> None:
        """What the runtime in an exec's process warned of, into its log as the binary logs."""
        from runtime.log import Log

        Log(self.runtime.log, "json").warning(message)

    def _op_attach(self, client: ClientConnection, request: dict) -> None:
        if self.exit is not None:
            client.send(protocol.error(f"container {self.id} has exited"))
            return
        client.send({"ok": True, "tty": self.terminal >= 0})
        if client.closed:
            return
        fd = client.sock.fileno()
        self.unwatch(fd)
        del self.clients[fd]
        self.attachers[fd] = Attacher(client.sock)
        self.watch(fd, self._on_attacher)

    def _op_resize(self, client: ClientConnection, request: dict) -> None:
        width = protocol.field(request, "width", int, 0)
        height = protocol.field(request, "height", int, 0)
        if not (0 <= width < 1 << 16 and 0 <= height < 1 << 16):
            raise BadRequest("malformed request: width and height must be 0 to 65535")
        if self.exit is not None:
            client.send(protocol.error(f"container {self.id} has exited"))
        elif self.terminal < 0:
            client.send(protocol.error(f"container {self.id} has no terminal"))
        else:
            import fcntl  # only here: a shim without a resize keeps them out of its pages
            import struct
            import termios

            fcntl.ioctl(self.terminal, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
            client.send({"ok": True})

    def _op_reopen_log(self, client: ClientConnection, request: dict) -> None:
        if self.log:
            try:
                self.log.reopen()
            except OSError as e:
                client.send(protocol.error(f"reopen {self.log_path}: {e.strerror}"))
                return
        client.send({"ok": True})

    def _op_shutdown(self, client: ClientConnection, request: dict) -> None:
        if self.shutdown_client is not None:
            client.send(protocol.error("a shutdown is already under way"))
            return
        self.shutdown_client = client
        self._helper(client, lambda: self._runtime_job(client, ["delete", "--force", self.id],
                                                       answer_ok=False), self._deleted)

    def _runtime_job(self, client: ClientConnection, argv: list[str], answer_ok: bool) -> int:
        """In a helper: runs the runtime; answers its error line (or ok when answer_ok)."""
        status, stderr = startup.run_now(self.runtime, argv, self.devnull)
        if status != 0:
            client.send(protocol.error(error_line(argv[0], status, stderr)))
            return 1
        if answer_ok:
            client.send({"ok": True})
        return 0

    def _deleted(self, status: int) -> None:
        client = self.shutdown_client
        if status != 0:  # the helper told the client why
            self.shutdown_client = None
            return
        if self.exit is None:  # delete killed it; it is our child, a zombie by now
            self._container_exited(os.waitpid(self.init_pid, 0)[1])
        self._drain_output()
        for attacher in list(self.attachers.values()):
            self._detach(attacher)
        for fd in list(self.streams):
            self._close_stream(fd)  # the partial lines go out
        if self.log:
            self.log.close()
        layout.remove_state_dir(self.state_dir)
        client.send({"ok": True})
        self.done = True


def _helper_exit(job) -> None:
    """The body of a helper child: job() -> exit status; never returns."""
    status = 1
    try:
        _signal.set_wakeup_fd(-1)
        _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
        status = job() or 0
    except BaseException:  # noqa: BLE001 - the trace goes to shim.log
        import traceback

        traceback.print_exc()
    finally:
        os._exit(status)


def _ignore(signum: int, frame: object) -> None:
    """SIGCHLD only wakes the loop (through the wakeup fd); the loop reaps."""

