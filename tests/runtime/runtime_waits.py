"""Bounded reads from a container's pipe or terminal: each gives up at its deadline with a
message saying what did not come, instead of hanging the suite."""
from __future__ import annotations

import os
import select
import time
from typing import IO

import pytest


def _read_some(fd: int, deadline: float, what: str, got: bytes) -> bytes:
    """The next bytes from fd (b"" at end of file, or EIO once a pty's last user is gone)."""
    ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
    if not ready:
        pytest.fail(f"{what}: nothing more came before the deadline (got {got[-500:]!r})")
    try:
        return os.read(fd, 4096)
    except OSError:  # EIO: the terminal's other side is closed
        return b""


def read_line(stream: IO[bytes], what: str, timeout: float = 30) -> bytes:
    """One line from a subprocess pipe, newline included (less if it ends first).

    Byte by byte from the descriptor: the file object's buffer is never used, so select() sees
    everything that is left, and communicate() or wait() later read the rest."""
    deadline = time.monotonic() + timeout
    fd = stream.fileno()
    line = b""
    while not line.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            pytest.fail(f"{what}: no line within {timeout:.0f} s (got {line!r})")
        byte = os.read(fd, 1)
        if not byte:
            break
        line += byte
    return line


def read_until(fd: int, marker: bytes, what: str, timeout: float = 30) -> bytes:
    """Everything from fd up to and including the chunk that holds marker."""
    deadline = time.monotonic() + timeout
    data = b""
    while marker not in data:
        chunk = _read_some(fd, deadline, what, data)
        if not chunk:
            pytest.fail(f"{what}: ended before {marker!r} (got {data[-500:]!r})")
        data += chunk
    return data


def read_to_end(fd: int, what: str, timeout: float = 30) -> bytes:
    """Everything from fd until its end."""
    deadline = time.monotonic() + timeout
    data = b""
    while chunk := _read_some(fd, deadline, what, data):
        data += chunk
    return data
