"""A shim's life rehearsed in the zygote before it forks any: the start report received, the Shim
made, its loop run through connections, `state` requests, an exec, container output and a SIGCHLD.

Why: a shim keeps a private copy of every page it writes, and running code writes the pages of
that code. CPython 3.11 counts each function's first calls in its code object, then rewrites the
code in place (quickening) and specializes each instruction at its first run after; generic
instructions also touch the names they look up (setattr takes a reference to the attribute's
name). Code run this way in the zygote is rewritten once, in pages every shim shares; in the
shim it then runs specialized and writes only the objects it works on.

The exec is a real one, as a probe's (shim.execs.Job: the plan read, the freezer checked, the
process made in C), from a plan the rehearsal writes in a directory of its own: `echo` in the
zygote's own namespaces and cgroups, as the zygote's user with the capabilities it holds. It is
the zygote's child, reaped by the rehearsed loop; the directory is removed at the end. Nothing
else reaches outside the zygote: no other process, no signal sent to another; the descriptors,
the signal handler and the wakeup fd are undone after each round.
"""
from __future__ import annotations

import os
import socket

import _signal

from cgroups import mode
from linux import constants as lx
from linux.syscalls import Syscalls
from overlay.timefmt import rfc3339_nano
from runtime import capabilities, exec_plan
from shim import protocol, server

# Calls of a code object before CPython 3.11 quickens it (8), and one more to specialize.
ROUNDS = 12
_ID = "rehearsal"
_REQUESTS = (b'{"op": "state"}\n', b'{"op": "reopen_log"}\n', b'{"op": "state"}\n',
             b'{"op": "exec", "args": ["echo", "a line"], "env": ["A=b"], "timeout": 30}\n',
             b'{"op": "bogus"}\n', b'{"op": "state"}\n')


def rehearse(directory: str) -> list[dict]:
    """Rehearses in `directory` (the zygote's own; a runtime root made and removed in it).
    Returns the answers of the last round (for tests)."""
    with open("/proc/self/comm") as f:
        name = f.read().strip()
    # Made with os calls: tempfile and shutil would load modules (random, hashlib...) into the
    # zygote's memory that no shim uses, and move the rest of it about.
    root = os.path.join(directory, f"rehearsal-{os.getpid()}")
    state_dir = os.path.join(root, _ID)
    os.makedirs(state_dir, 0o700, exist_ok=True)  # a killed zygote's of the same PID
    try:
        _write_plan(state_dir)
        for _ in range(ROUNDS):
            # serve()'s own calls: the subreaper flag is set and cleared (the zygote must not be
            # one: its shims, orphaned by the double fork, would become its children).
            Syscalls().prctl(lx.PR_SET_CHILD_SUBREAPER, 1)
            Syscalls().prctl(lx.PR_SET_CHILD_SUBREAPER, 0)
            answers = _one_shim(root)
    finally:
        for name_in_dir in os.listdir(state_dir):
            os.unlink(os.path.join(state_dir, name_in_dir))
        os.rmdir(state_dir)
        os.rmdir(root)
    Syscalls().set_name(name)
    return answers


def _write_plan(state_dir: str) -> None:
    """An exec plan that changes nothing for its process: no namespace to join, a cgroup that
    does not exist (never frozen, nothing joined), the zygote's own user and capabilities."""
    held = _held_capabilities()
    exec_plan.write(state_dir, exec_plan.ExecPlan(
        namespaces={}, cgroup_files=[], cgroup_path="/pycontainer/shim-rehearsal",
        cgroup_hierarchies=mode.detect().to_dict(), env=["PATH=/usr/bin:/bin"], cwd="/",
        uid=os.getuid(), gid=os.getgid(), additional_gids=list(os.getgroups()), umask=None,
        capabilities=capabilities.CapabilitySets(held["CapBnd"], held["CapEff"], [],
                                                 held["CapPrm"], []),
        last_cap=capabilities.last_cap(), rlimits=[], no_new_privileges=False, seccomp=None))


def _held_capabilities() -> dict[str, list[int]]:
    """The zygote's capability sets, by their /proc/self/status names."""
    held = {}
    with open("/proc/self/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name.startswith("Cap"):
                mask = int(value, 16)
                held[name] = [c for c in range(mask.bit_length()) if mask >> c & 1]
    return held


def _one_shim(root: str) -> list[dict]:
    """One Shim from a start report like the helper's, its loop run to the end of a client's
    requests; returns their answers."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    listener.bind("")  # an abstract address of the kernel's choosing: nothing on disk
    listener.listen(4)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    os.set_blocking(out_r, False)
    os.set_blocking(err_r, False)
    null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
    fds = {"devnull": null, "shim_log": os.dup(2), "log": os.dup(null),
           "listener": listener.detach(), "stdout": out_r, "stderr": err_r}
    report = {"ok": True, "id": _ID, "state_dir": os.path.join(root, _ID), "log_path": "/dev/null",
              "runtime": "/nonexistent", "runtime_root": root, "in_process": True,
              "pid": os.getpid(), "cgroup": "/", "oom_base": 0, "started_at": rfc3339_nano(),
              "tty": False, "fds": list(fds)}
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    socket.send_fds(theirs, [protocol.encode(report)], list(fds.values()))
    for fd in fds.values():
        os.close(fd)
    theirs.close()
    received, passed = server.receive(ours)
    ours.close()
    shim = server.Shim(received, dict(zip(received["fds"], passed)))
    Syscalls().set_name(f"shim-{shim.id}")
    os.write(out_w, b"a line\nand a partial one")
    os.write(err_w, b"an error line\r\n")
    client = _Client(shim)
    try:
        shim.loop()
    finally:
        os.close(_signal.set_wakeup_fd(-1))
        _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
        client.sock.close()
        for connection in list(shim.clients.values()):
            shim._drop(connection)
        shim.unwatch(shim.listener.fileno())
        shim.listener.close()
        for fd in list(shim.handlers):
            os.close(fd)  # the wakeup pipe's reader and the streams
        for fd in (shim.devnull, shim.log.fd, out_w, err_w):
            os.close(fd)
    return client.answers


class _Client:
    """A client of the rehearsed shim, run by the shim's own loop: sends each request once the
    answer to the one before is in, ends the loop after the last answer."""

    def __init__(self, shim: server.Shim) -> None:
        self.shim = shim
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self.sock.connect(shim.listener.getsockname())
        self.sock.setblocking(False)
        self.sent = 0
        self.buf = b""
        self.answers: list[dict] = []
        self._next()
        shim.watch(self.sock.fileno(), self._on_answer)

    def _next(self) -> None:
        self.sock.sendall(_REQUESTS[self.sent])
        self.sent += 1
        if self.sent == 2:
            _signal.raise_signal(_signal.SIGCHLD)  # the loop's wakeup and reaping, no child

    def _on_answer(self, fd: int, events: int) -> None:
        self.buf += self.sock.recv(65536)
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            self.answers.append(protocol.decode(line))
            if self.sent == len(_REQUESTS):
                self.shim.unwatch(fd)
                self.shim.done = True
                return
            self._next()
