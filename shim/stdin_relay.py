"""The container's stdin from a fifo: the shim copies what writers put into the fifo into a pipe
that is the container's stdin, and closes that pipe when the (first) writer closes the fifo, so
the container reads EOF then, as with containerd's stdin fifo and CRI's stdinOnce.

The fifo is opened without waiting for a writer; until one comes, the container's read simply
waits (Linux reports no hangup on a fifo that never had a writer). The copy never blocks the
shim: while the container does not read, the fifo is not read either.
"""
from __future__ import annotations

import os
import select


class StdinRelay:
    __slots__ = ("fifo", "out", "pending")

    def __init__(self, fifo: int, out: int) -> None:
        """fifo: opened O_RDONLY | O_NONBLOCK (no wait for a writer); out: our end of the
        container's stdin (a pipe's write end, or its pty master)."""
        self.fifo = fifo
        self.out = out
        os.set_blocking(out, False)
        self.pending = b""

    def watch(self) -> tuple[int, int]:
        """(fd, poll events) the shim's loop waits on next."""
        if self.pending:
            return self.out, select.POLLOUT
        return self.fifo, select.POLLIN

    def ready(self) -> bool:
        """Moves data on; False once stdin is finished (EOF or the container closed it)."""
        try:
            if not self.pending:
                self.pending = os.read(self.fifo, 65536)
                if not self.pending:
                    return False
            self.pending = self.pending[os.write(self.out, self.pending):]
        except BlockingIOError:
            pass
        except OSError:  # EPIPE: the container closed its stdin
            return False
        return True

    def close(self) -> None:
        for fd in (self.fifo, self.out):
            if fd >= 0:
                os.close(fd)
        self.fifo = self.out = -1
