"""The zygote: one small long-lived parent per shim root and code version, started on demand,
that has the shim's modules loaded and forks every new shim.

A fresh Python interpreter per shim would cost ~5 MiB of private memory each; a shim forked
from here shares the zygote's pages (copy-on-write) and keeps private only the pages it writes.
And the pages the zygote itself writes after a fork: the zygote's copy moves on, the shim keeps
the old one to itself. So the zygote's loop does next to nothing: accept a connection, fork,
close, reap. Everything else (reading the start request, the second fork) happens in the child.

The shims do not depend on the zygote: it forks each one through an intermediate child that
exits at once (the double fork), so a shim's parent is init (or the nearest subreaper) and the
zygote's death changes nothing for them; the next start brings a new zygote.

Files, in <root>/@zygote: zygote-<version>.sock (0600) and .pid, zygote.log (its stderr),
zygote.lock (held while one is started). The version (shim.fingerprint) is in the name, so a
caller running newer code (an upgrade, an edit) never reaches an older zygote: it starts its
own, which retires the older ones (their shims run on).

The start request and its answer are the business of the shim it forks (shim.startup).

    python -m shim.zygote ROOT    (what shim.launch runs; returns once the zygote listens)
"""
from __future__ import annotations

import gc
import os
import signal
import sys

from overlay.timefmt import rfc3339_nano
from shim import criolog, execs, fingerprint, layout, protocol, rehearsal, runtime_cli, server


def main() -> int:
    root = sys.argv[1]
    version = fingerprint.code_fingerprint()
    directory = layout.zygote_dir(root)
    os.makedirs(directory, 0o700, exist_ok=True)
    path = layout.zygote_socket(root, version)
    try:
        os.unlink(path)  # a dead zygote's; the caller holds the spawn lock
    except FileNotFoundError:
        pass
    listener = layout.bind_private_socket(path)
    _detach_stdio(os.path.join(directory, "zygote.log"))
    child = os.fork()
    if child > 0:
        with open(layout.zygote_pid_file(root, version), "w") as f:
            f.write(str(child))
        os._exit(0)  # the caller waits for this: the socket listens now
    os.chdir("/")
    _retire_others(root, version)
    _rehearse(directory)
    # Everything loaded so far is the shims' shared base: keep the collector off it, so that
    # no collection in a shim touches (and copies) those pages.
    gc.collect()
    fillers = _fresh_pools()  # noqa: F841 - alive in this frame, as _serve never returns
    gc.freeze()
    _serve(listener)
    return 0


# pymalloc (CPython 3.11, 64-bit): blocks of 16 to 512 bytes in steps of 16, from 16 KiB pools
# aligned to their size, the first block 48 bytes after the pool's header. Per block size, a call
# that makes an object of exactly that block (object() 16 bytes, a float 24, bytes 33 and its
# length), with its block size, made here once: the filling allocates nothing else that it frees
# afterwards.
_POOL_SIZE = 16384
_FIRST_BLOCK = 48
_MAKERS = ((16, object, ()), (32, float, (1,)),
           *((size, bytes, (size - 33,)) for size in range(48, 513, 16)))
# A bound, for an interpreter whose allocator has no such pools (it would never get there).
_MOST_PER_SIZE = 1 << 16


def _fresh_pools() -> list:
    """Fills the free blocks of every partly used pymalloc pool, so that what a shim allocates
    comes from fresh pools, one block after the other from the page of the pool's header,
    instead of from free blocks spread over pages the zygote's objects share (each page written
    is a shim's own: one to five pages a block size, and the neighbour pools' list links).
    Returns the fillers, to keep for the zygote's life; the holes they fill are in pages the
    zygote has already."""
    # Its array past pymalloc's sizes from the start: growing, it frees no block of a pool.
    fillers: list = [None] * 128
    for block, make, args in _MAKERS:
        previous = None
        for _ in range(_MOST_PER_SIZE):
            filler = make(*args)
            fillers.append(filler)
            # A fresh pool hands out its first block, then the ones after it (in the 32-byte
            # size, the ints these id() make take a block or two in between); a partly used pool
            # whose first block alone was free would end the filling too early.
            if previous is not None and id(previous) % _POOL_SIZE == _FIRST_BLOCK \
                    and 0 < id(filler) - id(previous) <= 4 * block:
                break
            previous = filler
    return fillers


def _detach_stdio(log_path: str) -> None:
    null = os.open("/dev/null", os.O_RDWR)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)


def _retire_others(root: str, version: str) -> None:
    """Stops the zygotes of older code in this root (their shims are not their children)."""
    directory = layout.zygote_dir(root)
    ours = os.path.basename(layout.zygote_pid_file(root, version))
    for name in os.listdir(directory):
        if not (name.startswith("zygote-") and name.endswith(".pid")) or name == ours:
            continue
        pid_file = os.path.join(directory, name)
        try:
            with open(pid_file) as f:
                pid = int(f.read())
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"shim.zygote\0" + root.encode() + b"\0" in f.read():
                    os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError):
            pass
        for stale in (pid_file, pid_file[:-4] + ".sock"):
            try:
                os.unlink(stale)
            except FileNotFoundError:
                pass


def _serve(listener) -> None:
    accept = listener._accept  # the C call: no Python socket object, nothing else to touch
    while True:
        # An error here ends the zygote (its trace in zygote.log); the next start starts another.
        fd, _ = accept()
        pid = os.fork()
        if pid == 0:
            _become_shim(listener, fd)
        os.close(fd)
        os.waitpid(pid, 0)


def _become_shim(listener, caller: int) -> None:
    try:
        os.close(listener.detach())  # or a dead zygote's socket would still queue callers
        os.setsid()
        if os.fork() > 0:
            os._exit(0)
        server.serve(caller)
    except BaseException:  # noqa: BLE001 - the shim's stderr (its shim.log) gets the trace
        import traceback

        traceback.print_exc()
    finally:
        os._exit(1)


def _rehearse(directory: str) -> None:
    """Runs, in the zygote, the pure code every shim runs (its start report, requests, log
    lines), so that its code objects are quickened and its caches settled in the pages the shims
    share, instead of being rewritten in each shim's private copy. The runtime's own modules are
    loaded here too: a shim runs this installation's `pycontainer` in a fork of itself (see
    shim.runtime_cli)."""
    for name in runtime_cli.IN_PROCESS_MODULES:
        __import__(name)
    rehearsal.rehearse(directory)
    for _ in range(20):
        report = protocol.decode(protocol.encode({
            "ok": True, "id": "x", "state_dir": "/x", "log_path": None, "runtime": "/x",
            "runtime_root": "/x", "in_process": True, "pid": 1, "cgroup": "/x", "oom_base": 0,
            "started_at": rfc3339_nano(), "fds": ["devnull", "listener"]}))
        for line in (b'{"op": "state"}', b'{"op": "wait"}', b'{"op": "kill", "signal": 9}',
                     b'{"op": "exec", "args": ["true"], "env": ["A=b"], "timeout": 1.5}'):
            request = protocol.parse(line)
        execs.Request(request)
        protocol.field(request, "all", bool, False)
        protocol.encode({"ok": True, "id": "x", "status": "running", "pid": report["pid"],
                         "shim_pid": 1, "started_at": "", "exit": None})
        criolog.split(b"", b"a line\npartial")


if __name__ == "__main__":
    sys.exit(main())
