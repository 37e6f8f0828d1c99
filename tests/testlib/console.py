"""The --console-socket a containerd shim or conmon listens on, for the runtime to send the
pty master of a `process.terminal: true` container to."""
from __future__ import annotations

import socket
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def console_socket(path: str, timeout: float | None = None) -> Iterator[tuple[str, socket.socket]]:
    """(path, the listening socket) at path; timeout: accept() fails after it instead of
    waiting for a runtime that never calls."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    server.settimeout(timeout)
    try:
        yield path, server
    finally:
        server.close()
