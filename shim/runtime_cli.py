"""The OCI runtime driven by its command line, as conmon drives runc: `pycontainer` by default, any
runtime with runc's verbs and flags (runc itself) will do. Keeps the shim free of the runtime's
internals.

Every call logs to the shim's runtime.log (JSON lines), so that the runtime's warnings never end
up in the container's output; its error line also comes on stderr, which the caller reads.

This installation's own `pycontainer` gets no new interpreter: a fork of the calling helper runs
the same command line through runtime.cli.main, whose modules the zygote has loaded already. Same
argv, descriptors, log and exit status as the binary; a new Python and its imports (some 40 ms
of CPU, twice per container start) saved. Its exec probes need no runtime process at all
(shim.execs.Job).
"""
from __future__ import annotations

import os
import sys

import _signal as signal  # the C module: the Python one builds enums (memory in every shim)

# Python ignores these two; a process we start must get them back (as subprocess does).
_DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)
# What runtime.cli.main runs for a fork of ours; imported with the shim's modules (see shim.zygote).
IN_PROCESS_MODULES = ("runtime.cli.main", "runtime.cli.commands.create",
                      "runtime.cli.commands.start", "runtime.cli.commands.kill",
                      "runtime.cli.commands.delete",
                      "runtime.init.container_init", "cgroups.v1", "cgroups.v2")


def default_runtime() -> str:
    """The `pycontainer` of this installation (beside this Python), else the one on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "pycontainer")
    if os.access(beside, os.X_OK):
        return beside
    import shutil  # only here: it brings fnmatch and re

    return shutil.which("pycontainer") or "/usr/local/sbin/pycontainer"


class RuntimeCommand:
    __slots__ = ("binary", "root", "log", "in_process")

    def __init__(self, binary: str, root: str, log: str, in_process: bool | None = None) -> None:
        """`in_process`: whether `binary` is this installation's runtime, when the caller knows
        (the shim, from its start helper: resolving both paths again would write 160 KiB of
        the shim's pages it otherwise shares with the zygote)."""
        self.binary = binary
        self.root = root
        self.log = log
        if in_process is None:
            in_process = os.path.realpath(binary) == os.path.realpath(default_runtime())
        self.in_process = in_process

    def argv(self, *args: str) -> list[str]:
        return [self.binary, "--root", self.root, "--log", self.log, "--log-format", "json", *args]

    def spawn(self, args: list[str], stdin: int, stdout: int, stderr: int) -> int:
        """Starts `runtime args...` with these descriptors as 0, 1 and 2; returns its PID."""
        if self.in_process:
            return self._fork_main(self.argv(*args)[1:], stdin, stdout, stderr)
        return os.posix_spawn(
            self.binary, self.argv(*args), os.environ,
            file_actions=[(os.POSIX_SPAWN_DUP2, stdin, 0), (os.POSIX_SPAWN_DUP2, stdout, 1),
                          (os.POSIX_SPAWN_DUP2, stderr, 2)],
            setsigdef=_DEFAULT_SIGNALS, setsigmask=())

    @staticmethod
    def _fork_main(argv: list[str], stdin: int, stdout: int, stderr: int) -> int:
        from runtime.cli.main import main

        pid = os.fork()
        if pid:
            return pid
        status = 1
        try:
            for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
                os.dup2(fd, target)
            # As in a fresh interpreter: Python's own dispositions, nothing of the helper's.
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            status = main(argv)
            sys.stdout.flush()
        except SystemExit as e:  # click's usage errors
            status = e.code if isinstance(e.code, int) else 1
        except BaseException:  # noqa: BLE001 - the runtime's stderr tells
            import traceback

            traceback.print_exc()
        finally:
            os._exit(status)


def read_available(fd: int, limit: int = 65536) -> bytes:
    """What a non-blocking pipe holds now (up to limit), without waiting for more."""
    chunks = []
    size = 0
    while size < limit:
        try:
            data = os.read(fd, limit - size)
        except OSError:  # EAGAIN: nothing more for now; EIO: a pty whose other end closed
            break
        if not data:
            break
        chunks.append(data)
        size += len(data)
    return b"".join(chunks)


def error_line(verb: str, wait_status: int, stderr: bytes) -> str:
    """The runtime's own error line (its last line on stderr), or how it ended."""
    lines = [line for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    if lines:
        return lines[-1].strip()
    if os.WIFSIGNALED(wait_status):
        return f"runtime {verb}: killed by signal {os.WTERMSIG(wait_status)}"
    return f"runtime {verb}: exit status {os.WEXITSTATUS(wait_status)}"
