"""Everything before the shim's loop, done by a short-lived child of the shim (the start helper):
read the caller's start request, make the state directory, the log file, the control socket and
the container's stdio, run `runtime create` and `runtime start`, note the container's PID, its
memory cgroup and OOM count and its terminal. Then hand the shim what it needs (one message on a
socketpair: a JSON report and the descriptors) and answer the caller.

Done in a child because the shim keeps a private copy of every page it writes, for the
container's whole life: this code and the objects it makes stay out of it. The container's
init still becomes the shim's child: `create` leaves it to the nearest subreaper among its
ancestors, which is the shim.

The start request (from shim.launch): {"op": "start", "id", "bundle", "root", "runtime",
"runtime_root", "log_path", "stdin", "stdin_once"}; the answer: {"ok": true, "pid": SHIM_PID,
"container_pid": PID} or {"ok": false, "error": "..."}.
"""
from __future__ import annotations

import json
import os
import select
import socket

from overlay.timefmt import rfc3339_nano
from runtime import exec_process
from runtime.container import Container
from runtime.errors import PycontainerError
from runtime.state import check_id
from shim import layout, oom, protocol
from shim.criolog import open_log
from shim.runtime_cli import RuntimeCommand, error_line, read_available

# How long the caller may take to send its start request.
_REQUEST_TIMEOUT_MS = 10_000


class StartFailed(Exception):
    """The container could not be started; the message is the line the caller gets."""


class _Start:
    """The start in progress: what exists so far, to hand over or to undo."""

    def __init__(self, request: dict) -> None:
        self.id = request["id"]
        check_id(self.id)
        self.bundle = request["bundle"]
        self.root = request["root"]
        self.log_path = request["log_path"]
        self.stdin_path = request["stdin"]
        self.stdin_once = request.get("stdin_once", True) is not False
        self.state_dir = layout.state_dir(self.root, self.id)
        self.runtime = RuntimeCommand(request["runtime"], request["runtime_root"],
                                      os.path.join(self.state_dir, layout.RUNTIME_LOG))
        self.made_dir = False
        self.created = False
        self.fds: dict[str, int] = {}  # what the shim gets, by name
        self.devnull = -1
        self.err_reader = -1  # where the runtime's error line comes
        self.pid = 0
        self.cgroup: str | None = None
        self.oom_base = 0
        self.started_at = ""
        self.terminal = False

    def prepare(self) -> None:
        os.makedirs(self.root, 0o700, exist_ok=True)
        try:
            os.mkdir(self.state_dir, 0o700)
        except FileExistsError:
            raise StartFailed(f"a shim for container {self.id} already exists in {self.root}"
                              ) from None
        self.made_dir = True
        self.devnull = self.fds["devnull"] = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        self.fds["shim_log"] = os.open(os.path.join(self.state_dir, layout.SHIM_LOG),
                                       os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                                       0o600)
        if self.log_path:
            os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
            self.fds["log"] = open_log(self.log_path)
        if self.stdin_path:
            self.fds["stdin_fifo"] = os.open(self.stdin_path,
                                             os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            if not self.stdin_once:
                # A writer of our own: the fifo never reads EOF, attach after attach.
                self.fds["stdin_hold"] = os.open(self.stdin_path, os.O_WRONLY | os.O_CLOEXEC)
        listener = layout.bind_private_socket(os.path.join(self.state_dir, layout.SOCKET))
        self.fds["listener"] = listener.detach()

    def run_container(self) -> None:
        terminal = self.terminal = _wants_terminal(self.bundle)
        console = None
        if terminal:
            console = layout.bind_private_socket(
                os.path.join(self.state_dir, layout.CONSOLE_SOCKET))
        stdio = self._stdio(terminal)
        self.pid = self._create(stdio, console)
        self.created = True
        self.cgroup = oom.cgroup_of(self.pid)
        self.oom_base = oom.kill_count(self.cgroup)
        if self.runtime.in_process:
            self._exec_birth_place()
        if console is not None:
            master = self._receive_terminal(console)
            self.fds["stdout"] = master  # a terminal has one stream: everything is stdout
            if "stdin_fifo" in self.fds:
                self.fds["stdin_out"] = os.dup(master)
        status, stderr = run_now(self.runtime, ["start", self.id], self.devnull)
        if status != 0:
            raise StartFailed(error_line("start", status, stderr))
        self.started_at = rfc3339_nano()
        self._write_info()

    def _stdio(self, terminal: bool) -> list[int]:
        """The create's descriptors 0, 1, 2 (the container's stdio, without a terminal)."""
        err_r, err_w = os.pipe()
        os.set_blocking(err_r, False)
        self.err_reader = err_r
        if terminal:
            return [self.devnull, self.devnull, err_w]
        self.fds["stderr"] = err_r
        out_r, out_w = os.pipe()
        os.set_blocking(out_r, False)
        self.fds["stdout"] = out_r
        stdin = self.devnull
        if "stdin_fifo" in self.fds:
            stdin, stdin_w = os.pipe()
            self.fds["stdin_out"] = stdin_w
        return [stdin, out_w, err_w]

    def _create(self, stdio: list[int], console: socket.socket | None) -> int:
        pid_file = os.path.join(self.state_dir, layout.CONTAINER_PID)
        argv = ["create", "--bundle", self.bundle, "--pid-file", pid_file]
        if console is not None:
            argv += ["--console-socket", console.getsockname()]
        pid = self.runtime.spawn([*argv, self.id], *stdio)
        for fd in set(stdio) - {self.devnull}:
            os.close(fd)
        status = os.waitpid(pid, 0)[1]
        if status != 0:
            # Nothing of the container ran yet: its stderr holds only the runtime's words.
            raise StartFailed(error_line("create", status, read_available(self.err_reader)))
        try:
            with open(pid_file) as f:
                return int(f.read().strip())
        except (OSError, ValueError) as e:
            raise StartFailed(f"runtime create: no PID in {pid_file} ({e})") from None

    def _exec_birth_place(self) -> None:
        """The container's PID namespace and cgroup2 directory, for the shim to fork each exec's
        process there (shim.execs.Job)."""
        container = Container.load(self.runtime.root, self.id, lock=False)
        pid_ns, cgroup = exec_process.birth_place(container)
        for name, fd in (("exec_pid_ns", pid_ns), ("exec_cgroup", cgroup)):
            if fd >= 0:
                self.fds[name] = fd

    def _receive_terminal(self, console: socket.socket) -> int:
        """The pty master the container's init sent over the console socket during create."""
        try:
            console.setblocking(False)
            conn, _ = console.accept()
            with conn:
                conn.settimeout(5.0)
                _, fds, _, _ = socket.recv_fds(conn, 16, 1, socket.MSG_CMSG_CLOEXEC)
        except OSError as e:
            raise StartFailed(f"console socket: no terminal from the container ({e})") from None
        finally:
            console.close()
            os.unlink(os.path.join(self.state_dir, layout.CONSOLE_SOCKET))
        if not fds:
            raise StartFailed("console socket: the container sent no terminal")
        os.set_blocking(fds[0], False)
        return fds[0]

    def _write_info(self) -> None:
        info = {"id": self.id, "pid": os.getppid(), "container_pid": self.pid,
                "bundle": self.bundle, "log_path": self.log_path, "runtime": self.runtime.binary,
                "runtime_root": self.runtime.root, "started_at": self.started_at}
        path = os.path.join(self.state_dir, layout.INFO)
        with open(path + ".tmp", "w") as f:
            f.write(json.dumps(info))
        os.rename(path + ".tmp", path)

    def report(self) -> tuple[dict, list[int]]:
        names = list(self.fds)
        return {"ok": True, "id": self.id, "state_dir": self.state_dir,
                "log_path": self.log_path, "runtime": self.runtime.binary,
                "runtime_root": self.runtime.root, "in_process": self.runtime.in_process,
                "pid": self.pid, "cgroup": self.cgroup,
                "oom_base": self.oom_base, "started_at": self.started_at,
                "tty": self.terminal, "fds": names}, [self.fds[n] for n in names]

    def undo(self) -> None:
        if self.created:
            run_now(self.runtime, ["delete", "--force", self.id], self.devnull)
        if self.made_dir:
            layout.remove_state_dir(self.state_dir)


def run(caller: int, shim: socket.socket) -> int:
    """The start helper's whole job; returns its exit status."""
    start = None
    try:
        start = _Start(_read_request(caller))
        start.prepare()
        start.run_container()
    except (StartFailed, PycontainerError, OSError, ValueError, KeyError, TypeError) as e:
        socket.send_fds(shim, [protocol.encode({"ok": False})], [])
        shim.recv(1)  # EOF once the shim has exited: nothing of it is left when the caller hears
        if start is not None:
            start.undo()
        protocol.write_to(caller, protocol.error(_one_line(e)))
        return 1
    report, fds = start.report()
    socket.send_fds(shim, [protocol.encode(report)], fds)
    protocol.write_to(caller, {"ok": True, "pid": os.getppid(), "container_pid": start.pid})
    return 0


def _one_line(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"start request: missing field {error}"
    if isinstance(error, OSError) and error.strerror:
        return f"{error.filename}: {error.strerror}" if error.filename else error.strerror
    return str(error)


def _read_request(fd: int) -> dict:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    data = b""
    while b"\n" not in data:
        if not poller.poll(_REQUEST_TIMEOUT_MS) or len(data) > protocol.MAX_REQUEST:
            raise ValueError("start request: no complete line")
        chunk = os.read(fd, 65536)
        if not chunk:
            raise ValueError("start request: no complete line")
        data += chunk
    request = protocol.decode(data.split(b"\n", 1)[0])
    if not isinstance(request, dict):
        raise ValueError("start request: not a JSON object")
    return request


def run_now(runtime: RuntimeCommand, argv: list[str], devnull: int) -> tuple[int, bytes]:
    """(wait status, stderr) of the runtime run to its end."""
    err_r, err_w = os.pipe()
    try:
        pid = runtime.spawn(argv, devnull, devnull, err_w)
    finally:
        os.close(err_w)
    try:
        status = os.waitpid(pid, 0)[1]
        os.set_blocking(err_r, False)  # a hook it started may still hold the pipe open
        return status, read_available(err_r)
    finally:
        os.close(err_r)


def _wants_terminal(bundle: str) -> bool:
    """process.terminal of the bundle's config (the runtime reports a config it refuses)."""
    try:
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            return json.loads(f.read())["process"]["terminal"] is True
    except (OSError, ValueError, KeyError, TypeError):
        return False
