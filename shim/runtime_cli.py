"""The OCI runtime driven by its command line, as conmon drives runc: `pycontainer` by default, any
runtime with runc's verbs and flags (runc itself) will do. Keeps the shim free of the runtime's
internals and its imports.

Every call logs to the shim's runtime.log (JSON lines), so that the runtime's warnings never end
up in the container's output; its error line also comes on stderr, which the caller reads.
"""
from __future__ import annotations

import os
import signal

# Python ignores these two; a process we start must get them back (as subprocess does).
_DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)


class Runtime:
    __slots__ = ("binary", "root", "log")

    def __init__(self, binary: str, root: str, log: str) -> None:
        self.binary = binary
        self.root = root
        self.log = log

    def argv(self, *args: str) -> list[str]:
        return [self.binary, "--root", self.root, "--log", self.log, "--log-format", "json", *args]

    def spawn(self, args: list[str], stdin: int, stdout: int, stderr: int) -> int:
        """Starts `runtime args...` with these descriptors as 0, 1 and 2; returns its PID."""
        return os.posix_spawn(
            self.binary, self.argv(*args), os.environ,
            file_actions=[(os.POSIX_SPAWN_DUP2, stdin, 0), (os.POSIX_SPAWN_DUP2, stdout, 1),
                          (os.POSIX_SPAWN_DUP2, stderr, 2)],
            setsigdef=_DEFAULT_SIGNALS, setsigmask=())


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
