"""What the streaming protocols hand a backend, and what they expect back.

A remotecommand session (exec or attach) gets a Session: plain file descriptors for the streams
the client asked for, so that a backend can give them to a child process as its stdio. The
protocol side owns them: it closes them after the backend returns, and a backend must not close
them itself (a child it passes them to gets its own copies). stdin reads EOF once the client
closes its stdin; output written to stdout/stderr reaches the client until the backend returns
and the last writer (the backend or a child of it) closes its copy.

A port-forward gets one `dial(port)` call per connection the client opens."""
from __future__ import annotations

import os
import queue
import select
import socket
import threading
from dataclasses import dataclass, field
from typing import Callable


class StreamError(Exception):
    """A failure the client is told on the error channel (exec: the command could not start, the
    container is gone; port-forward: the port refused), in one line."""


@dataclass(frozen=True)
class TerminalSize:
    width: int
    height: int


@dataclass
class Session:
    """One exec or attach, as the client asked for it (CRI's ExecRequest/AttachRequest)."""
    stdin: int | None           # read end; EOF when the client closes its stdin
    stdout: int | None          # write end
    stderr: int | None          # write end; None with tty (a terminal has one output stream)
    tty: bool
    # Terminal sizes as the client sends them (the first comes at once with kubectl -it); a
    # backend with a terminal applies each (TIOCSWINSZ on its pty master) until it returns.
    resizes: queue.Queue[TerminalSize] = field(default_factory=queue.Queue)
    # Set when the client goes (closes or drops the connection) before the backend returns:
    # an attach that only waits on the container can stop then. The session's pipes break too
    # (stdin reads EOF, output writes fail with EPIPE), which is all an exec needs.
    gone: threading.Event = field(default_factory=threading.Event)


def write_output(fd: int, data: bytes) -> bool:
    """Writes all of `data` to `fd` (a session's output, or the terminal its input feeds),
    waiting as on a blocking descriptor where it is non-blocking; False once the reader is
    gone."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            select.select([], [fd], [])
        except OSError:
            return False
    return True


# exec: runs cmd in the container with the session's streams, returns its exit code (raises
# StreamError when it cannot run). A non-zero code reaches the client as kube's
# NonZeroExitCode Status, so that `kubectl exec` exits with it.
Exec = Callable[[list[str], Session], int]
# attach: joins the container's own stdio until it exits or the client goes (raises StreamError).
Attach = Callable[[Session], None]
# port-forward: a socket connected to `port` inside the pod's network namespace.
Dial = Callable[[int], socket.socket]
