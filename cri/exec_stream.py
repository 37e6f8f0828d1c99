"""exec with the client's streams (the CRI's Exec, behind the kubelet's /exec): the runtime's
`exec` in the foreground, as containerd runs runc's, with the session's descriptors as the
process's stdio; with a terminal, `exec --tty --console-socket` hands us the pty master, which
is relayed to the session and resized as the client asks.

The runtime stays the process's parent and exits with its code (128+N for signal N). Its own
error line (a command not found, a container that stopped) shares the stderr pipe with the
process, so that pipe is read here: until the PID file tells that the process started, what
comes on it is held back, and a runtime that ends without starting it becomes a StreamError.
When the client goes away (the read end of a session stream closes) the process is killed and
the runtime reaped: nothing is left behind."""
from __future__ import annotations

import fcntl
import os
import queue
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import termios
import threading

from shim.runtime_cli import RuntimeCommand, error_line, read_available

from cri.streaming.backend import Session, StreamError, TerminalSize, write_output

# How long the runtime may take to send the pty master once it started.
_CONSOLE_TIMEOUT = 10.0


def run(runtime: RuntimeCommand, container_id: str, cmd: list[str], session: Session) -> int:
    """Runs cmd in the container to its end; its exit code (StreamError if it cannot start)."""
    if not cmd:
        raise StreamError("command: at least one argument is required")
    scratch = tempfile.mkdtemp(prefix="pyexec-")  # short: a unix socket path lives here
    try:
        return _Exec(runtime, container_id, cmd, session, scratch).run()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class _Exec:
    def __init__(self, runtime: RuntimeCommand, container_id: str, cmd: list[str],
                 session: Session, scratch: str) -> None:
        self.runtime = runtime
        self.container_id = container_id
        self.cmd = cmd
        self.session = session
        self.pid_file = os.path.join(scratch, "pid")
        self.console_path = os.path.join(scratch, "console.sock")
        self.held = bytearray()         # the stderr pipe's bytes until the process started
        self.started = False
        self.master = -1
        # Held by the resize thread around each resize, and here to end it: the master's
        # number is never resized after it was closed (and maybe reused).
        self.master_lock = threading.Lock()

    def run(self) -> int:
        s = self.session
        argv = ["exec", "--pid-file", self.pid_file]
        console = None
        if s.tty:
            console = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            console.bind(self.console_path)
            console.listen(1)
            argv += ["--tty", "--console-socket", self.console_path, "--env", "TERM=xterm"]
        argv += [self.container_id, *self.cmd]
        err_r, err_w = os.pipe()
        devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        try:
            with_pipes = not s.tty
            stdin = s.stdin if with_pipes and s.stdin is not None else devnull
            stdout = s.stdout if with_pipes and s.stdout is not None else devnull
            proc = subprocess.Popen(self.runtime.argv(*argv), stdin=stdin, stdout=stdout,
                                    stderr=err_w, start_new_session=True)
        except OSError as e:
            for fd in (err_r, err_w, devnull):
                os.close(fd)
            if console is not None:
                console.close()
            raise StreamError(f"exec: cannot run the runtime: {e.strerror}") from None
        os.close(err_w)
        os.close(devnull)
        os.set_blocking(err_r, False)
        stop = threading.Event()
        try:
            if console is not None:
                self.master = self._receive_master(console, proc)
                if self.master >= 0:
                    threading.Thread(target=self._apply_resizes, args=(stop,), daemon=True,
                                     name="exec-resize").start()
            self._relay(proc, err_r)
            code = proc.wait()
            self._check_started()
            self._stderr(read_available(err_r, 1 << 20))
            if not self.started:
                raise StreamError(error_line("exec", code << 8 if code >= 0 else -code,
                                             bytes(self.held)))
            return code
        finally:
            with self.master_lock:
                stop.set()
            if proc.poll() is None:
                self._kill(proc)
            os.close(err_r)
            if self.master >= 0:
                os.close(self.master)
            if console is not None:
                console.close()

    def _receive_master(self, console: socket.socket, proc: subprocess.Popen) -> int:
        """The pty master, or -1 when the runtime ended without sending it (its error tells)."""
        pidfd = os.pidfd_open(proc.pid)
        try:
            poller = select.poll()
            poller.register(console.fileno(), select.POLLIN)
            poller.register(pidfd, select.POLLIN)
            ready = {fd for fd, _ in poller.poll(int(_CONSOLE_TIMEOUT * 1000))}
        finally:
            os.close(pidfd)
        if console.fileno() not in ready:
            return -1
        try:
            conn, _ = console.accept()
            with conn:
                conn.settimeout(_CONSOLE_TIMEOUT)
                _, fds, _, _ = socket.recv_fds(conn, 16, 1, socket.MSG_CMSG_CLOEXEC)
        except OSError:
            return -1
        if fds:
            os.set_blocking(fds[0], False)
        return fds[0] if fds else -1

    def _relay(self, proc: subprocess.Popen, err_r: int) -> None:
        """Moves output (and a terminal's input) until the runtime ends or the client goes."""
        s = self.session
        pidfd = os.pidfd_open(proc.pid)
        try:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            poller.register(err_r, select.POLLIN)
            if self.master >= 0:
                poller.register(self.master, select.POLLIN)
                if s.stdin is not None:
                    poller.register(s.stdin, select.POLLIN)
            # A write end whose reader closed reports POLLERR (a pipe) or POLLHUP (a socket):
            # the client has gone.
            outputs = {fd for fd in (s.stdout, s.stderr) if fd is not None}
            for fd in outputs:
                poller.register(fd, 0)
            while True:
                for fd, events in poller.poll():
                    if fd == pidfd:
                        return
                    if fd in outputs:
                        self._kill(proc)
                        return
                    if fd == err_r:
                        data = read_available(err_r)
                        if not data and events & (select.POLLHUP | select.POLLERR):
                            poller.unregister(err_r)
                        self._stderr(data)
                    elif fd == self.master:
                        data = read_available(self.master)
                        if not data:
                            poller.unregister(self.master)  # EIO: the terminal's users are gone
                        elif s.stdout is not None:
                            write_output(s.stdout, data)
                    elif fd == s.stdin:
                        try:
                            data = os.read(s.stdin, 65536)
                        except BlockingIOError:
                            continue
                        except OSError:
                            data = b""
                        if data:
                            write_output(self.master, data)
                        else:
                            poller.unregister(s.stdin)
        finally:
            os.close(pidfd)
            if self.master >= 0 and s.stdout is not None:
                write_output(s.stdout, read_available(self.master, 1 << 20))

    def _check_started(self) -> None:
        if not self.started:
            self.started = os.path.exists(self.pid_file)

    def _stderr(self, data: bytes) -> None:
        """The stderr pipe's bytes: the process's once it started, else held back (the
        runtime's error line, or what the process wrote before its PID file was there)."""
        self.held += data
        self._check_started()
        if self.started and self.held:
            if self.session.stderr is not None:
                write_output(self.session.stderr, bytes(self.held))
            self.held.clear()

    def _apply_resizes(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                size: TerminalSize = self.session.resizes.get(timeout=0.5)
            except queue.Empty:
                continue
            with self.master_lock:
                if stop.is_set():
                    return
                try:
                    fcntl.ioctl(self.master, termios.TIOCSWINSZ,
                                struct.pack("HHHH", size.height, size.width, 0, 0))
                except OSError:
                    return

    def _kill(self, proc: subprocess.Popen) -> None:
        """The process (the runtime's child until the runtime reaps it: its PID is still its
        own while the runtime runs), then the runtime, reaped."""
        pid = _read_pid(self.pid_file)
        if pid and proc.poll() is None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _read_pid(path: str) -> int:
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0
