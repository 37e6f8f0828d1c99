"""The parent of `pyapiserver --workers N`: holds the listening socket, starts the workers, starts
again any worker that dies (saying why), and stops them all when it is told to stop.

Workers are fresh interpreters (`python -m apiserver.cli` with the parent's own flags and the
worker's), so no thread of the parent is inherited half-way. They accept connections from the
one listening socket they inherit: a connection waiting in its backlog survives the death of any
worker. The first worker starts alone because it prepares what the others read (PKI, the admin
kubeconfig, the system namespaces); each dies with the parent (PR_SET_PDEATHSIG), so that a
SIGKILL of the parent leaves no server behind.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import prctl

# A worker that died is started again no sooner than this after its previous start.
RESTART_DELAY = 1.0
# How long workers get to finish after SIGTERM before they are killed.
STOP_TIMEOUT = 10.0
LISTEN_BACKLOG = 256


def listen(host: str, port: int) -> socket.socket:
    """The listening socket every worker accepts from: non-blocking, since the workers race for
    each connection and the losers must not block in accept()."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(LISTEN_BACKLOG)
    sock.setblocking(False)
    sock.set_inheritable(True)
    return sock


def _exit_reason(returncode: int) -> str:
    if returncode < 0:
        return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with status {returncode}"


# Starts the line a worker reports instead of its URL when it cannot serve.
_FAILED = "failed: "


class WorkerFailed(Exception):
    """A worker did not come up: its own reason, or how it ended."""


@dataclass(frozen=True)
class WorkerRole:
    """What the parent tells a worker, as its hidden --worker flag."""
    index: int
    listen_fd: int
    ready_fd: int          # -1: nobody waits for it (a restart)
    parent: int            # the parent's pid: a worker whose parent is gone exits at once
    storage_socket: str    # empty with --etcd-servers: each worker reaches etcd itself

    def flag(self) -> str:
        return (f"--worker={self.index}:{self.listen_fd}:{self.ready_fd}:{self.parent}:"
                f"{self.storage_socket}")

    @classmethod
    def parse(cls, text: str) -> "WorkerRole":
        index, listen_fd, ready_fd, parent, storage = text.split(":", 4)
        return cls(int(index), int(listen_fd), int(ready_fd), int(parent), storage)

    def die_with_parent(self) -> None:
        prctl.set_pdeathsig(signal.SIGKILL)
        if os.getppid() != self.parent:
            sys.exit(1)

    def report_ready(self, line: str) -> None:
        if self.ready_fd < 0:
            return
        with os.fdopen(self.ready_fd, "w") as f:
            f.write(line + "\n")

    def report_failure(self, reason: str) -> None:
        """Why the worker cannot serve (a bad flag, mostly): a first start hands it to the
        parent, which says it in the one line of a single process; a restart logs it."""
        if self.ready_fd < 0:
            print(f"pyapiserver: worker {self.index}: {reason}", file=sys.stderr, flush=True)
            return
        self.report_ready(_FAILED + reason)


@dataclass
class _Worker:
    index: int
    proc: subprocess.Popen | None = None
    started: float = 0.0  # time.monotonic() of its last start


class Supervisor:
    def __init__(self, argv: list[str], count: int, listener: socket.socket,
                 storage_socket: str):
        """`argv`: the parent's flags, which every worker gets too, followed by its own."""
        self._argv = argv
        self._listener = listener
        self._storage_socket = storage_socket
        self._workers = [_Worker(i) for i in range(count)]

    @property
    def port(self) -> int:
        return self._listener.getsockname()[1]

    def _spawn(self, worker: _Worker, ready_fd: int = -1) -> None:
        role = WorkerRole(worker.index, self._listener.fileno(), ready_fd, os.getpid(),
                          self._storage_socket)
        worker.proc = subprocess.Popen(
            [sys.executable, "-m", "apiserver.cli", *self._argv, "--port", str(self.port),
             role.flag()],
            pass_fds=(role.listen_fd,) + ((ready_fd,) if ready_fd >= 0 else ()))
        worker.started = time.monotonic()

    def start(self) -> str:
        """Starts the workers one by one, each once the previous one serves; returns what the
        first one reported (its URL and kubeconfig). Raises WorkerFailed if one fails."""
        first = ""
        for worker in self._workers:
            read_end, write_end = os.pipe()
            try:
                self._spawn(worker, write_end)
            finally:
                os.close(write_end)
            with os.fdopen(read_end) as ready:
                line = ready.read().strip()
            if line.startswith(_FAILED) or not line:
                worker.proc.wait()
                raise WorkerFailed(line[len(_FAILED):] or f"worker {worker.index} "
                                   f"{_exit_reason(worker.proc.returncode)} before serving")
            first = first or line
        return first

    def restart_dead(self) -> None:
        for worker in self._workers:
            if worker.proc is None or worker.proc.poll() is None:
                continue
            if time.monotonic() - worker.started < RESTART_DELAY:
                continue
            print(f"pyapiserver: worker {worker.index} (pid {worker.proc.pid}) "
                  f"{_exit_reason(worker.proc.returncode)}; starting it again",
                  file=sys.stderr, flush=True)
            self._spawn(worker)

    def stop(self) -> None:
        live = [w.proc for w in self._workers if w.proc is not None and w.proc.poll() is None]
        for proc in live:
            proc.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for proc in live:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._listener.close()
