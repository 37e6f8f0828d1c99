"""Reading a container's CRI log file back as `kubectl logs` shows it (the kubelet's
ReadLogs): the content of each record, whole lines joined from their partial records, with
tailLines, sinceTime, timestamps and limitBytes, and follow: waiting for more, across a
rotation, until the container stops."""
from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable

from kubeapi import timefmt

FOLLOW_POLL = 0.1


class Options:
    __slots__ = ("follow", "tail_lines", "timestamps", "since", "limit_bytes")

    def __init__(self, follow: bool = False, tail_lines: int | None = None,
                 timestamps: bool = False, since: float | None = None,
                 limit_bytes: int | None = None) -> None:
        self.follow = follow
        self.tail_lines = tail_lines
        self.timestamps = timestamps
        self.since = since
        self.limit_bytes = limit_bytes


def parse(line: bytes) -> tuple[bytes, bytes, bytes, bytes] | None:
    """(timestamp, stream, tag, content) of one record; None if it is not one."""
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3:
        return None
    if len(parts) == 3:
        parts.append(b"")
    ts, stream, tag, content = parts
    if tag not in (b"F", b"P"):   # a writer without tags (the older format): whole lines
        return ts, stream, b"F", tag + (b" " + content if content else b"")
    return ts, stream, tag, content


def _render(record: tuple[bytes, bytes, bytes, bytes], opts: Options) -> bytes | None:
    ts, _, tag, content = record
    if opts.since is not None:
        try:
            if timefmt.parse(ts.decode()) < opts.since:
                return None
        except ValueError:
            pass
    out = content + (b"\n" if tag == b"F" else b"")
    return ts + b" " + out if opts.timestamps else out


def _tail(f, n: int) -> None:
    """Positions f at the start of its last n lines."""
    if n <= 0:
        f.seek(0, os.SEEK_END)
        return
    starts: deque[int] = deque(maxlen=n)
    pos = 0
    f.seek(0)
    for line in f:
        starts.append(pos)
        pos += len(line)
    f.seek(starts[0] if starts else pos)


class _Done(Exception):
    pass


class _Output:
    """Renders records and stops at limitBytes."""

    def __init__(self, opts: Options, write: Callable[[bytes], None]) -> None:
        self.opts = opts
        self.write = write
        self.written = 0

    def lines(self, data: bytes) -> bytes:
        """Writes the whole records in data; returns the unfinished rest."""
        *lines, rest = data.split(b"\n")
        for line in lines:
            record = parse(line)
            out = _render(record, self.opts) if record else None
            if not out:
                continue
            if self.opts.limit_bytes is not None:
                out = out[:self.opts.limit_bytes - self.written]
            self.write(out)
            self.written += len(out)
            if self.opts.limit_bytes is not None and self.written >= self.opts.limit_bytes:
                raise _Done
        return rest


def stream(path: str, opts: Options, write: Callable[[bytes], None],
           running: Callable[[], bool]) -> None:
    """Writes the log at path; with follow, keeps going while running() says so, and across
    rotations (the path names a new file: the old one is read to its end first)."""
    out = _Output(opts, write)
    f = open(path, "rb")
    try:
        if opts.tail_lines is not None:
            _tail(f, opts.tail_lines)
        buf = b""
        while True:
            chunk = f.read(65536)
            if chunk:
                buf = out.lines(buf + chunk)
                continue
            if not opts.follow:
                return
            if _rotated(f, path):
                buf = out.lines(buf + f.read())
                f.close()
                f = open(path, "rb")
                buf = b""
                continue
            if not running():
                out.lines(buf + f.read())    # what it wrote just before it stopped
                return
            time.sleep(FOLLOW_POLL)
    except _Done:
        return
    finally:
        f.close()


def _rotated(f, path: str) -> bool:
    try:
        return os.stat(path).st_ino != os.fstat(f.fileno()).st_ino
    except FileNotFoundError:
        return False
