"""The pipe protocol between the runtime (parent) and the container's init before exec.

One message per line, "<tag> <payload>", written with a single write(2) so that each arrives whole.
Pipes created by Python are close-on-exec, so a successful execve closes the child's end: the
parent then reads EOF, which is how an exec is known to have worked.
"""
from __future__ import annotations

import os

GO = "go"              # parent -> init: ID maps written; carry on (payload: the OCI state)
JOINED = "joined"      # parent -> init: moved into the container's cgroup
HOOKS = "hooks"        # init -> parent: namespaces ready; run prestart/createRuntime hooks
HOOKS_DONE = "hooks-done"
READY = "ready"        # init -> parent: everything set up, waiting for start
ERROR = "error"        # child -> parent: what failed (one line)
WARNING = "warning"    # child -> parent: what the runtime should log, not fail on


class Channel:
    """One direction of the protocol over a pipe end."""

    __slots__ = ("fd", "_buffer")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = b""

    def send(self, tag: str, payload: str = "") -> None:
        line = f"{tag} {payload}".replace("\n", " ") + "\n"
        os.write(self.fd, line.encode())

    def receive(self) -> tuple[str, str] | None:
        """The next message, or None at EOF."""
        while b"\n" not in self._buffer:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        tag, _, payload = line.decode(errors="replace").partition(" ")
        return tag, payload

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def pair() -> tuple[Channel, Channel]:
    """(read end, write end) of a new pipe."""
    r, w = os.pipe()
    return Channel(r), Channel(w)
