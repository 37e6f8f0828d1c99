"""Container output to a log file in the CRI format the kubelet reads back:

    2016-10-06T00:17:09.669794202Z stdout F a whole line
    2016-10-06T00:17:09.669794202Z stderr P the first 16 KiB of a longer line

A line ends at "\\n" (a "\\r" before it is dropped, as containerd does for tty output); a line
longer than MAX_LINE goes out as "P" (partial) records of MAX_LINE bytes and a final "F"; output
left without a newline when the stream ends is one last "P". Timestamps are RFC 3339 in UTC with
nanoseconds.
"""
from __future__ import annotations

import os

from overlay.timefmt import rfc3339_nano

# containerd's default max_container_log_line_size: the longest line one record holds.
MAX_LINE = 16 * 1024
STDOUT = b"stdout"
STDERR = b"stderr"


def split(pending: bytes, data: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """([(tag, content)], what stays pending): the records `data` completes after `pending`."""
    data = pending + data if pending else data
    records = []
    start = 0
    while (end := data.find(b"\n", start)) >= 0:
        line_end = end - 1 if end > start and data[end - 1] == 13 else end  # 13: "\r"
        while line_end - start > MAX_LINE:
            records.append((b"P", data[start:start + MAX_LINE]))
            start += MAX_LINE
        records.append((b"F", data[start:line_end]))
        start = end + 1
    while len(data) - start > MAX_LINE:
        records.append((b"P", data[start:start + MAX_LINE]))
        start += MAX_LINE
    return records, data[start:]


class CriLog:
    """The log file of one container, shared by its streams; reopen() after a rotation."""

    __slots__ = ("path", "fd", "pending")

    def __init__(self, path: str, fd: int) -> None:
        """fd: the file at path, opened by open_log()."""
        self.path = path
        self.fd = fd
        self.pending: dict[bytes, bytes] = {}

    def write(self, stream: bytes, data: bytes) -> None:
        records, self.pending[stream] = split(self.pending.get(stream, b""), data)
        if records:
            self._emit(stream, records)

    def finish(self, stream: bytes) -> None:
        """The stream ended: what is left without a newline goes out as a partial line."""
        rest = self.pending.pop(stream, b"")
        if rest:
            self._emit(stream, [(b"P", rest)])

    def _emit(self, stream: bytes, records: list[tuple[bytes, bytes]]) -> None:
        head = rfc3339_nano().encode() + b" " + stream + b" "
        out = b"".join(b"%s%s %s\n" % (head, tag, content) for tag, content in records)
        try:
            while out:
                out = out[os.write(self.fd, out):]
        except OSError:
            pass  # a full disk must not stop the container: drop, keep draining its output

    def reopen(self) -> None:
        fd = open_log(self.path)
        os.close(self.fd)
        self.fd = fd

    def close(self) -> None:
        os.close(self.fd)


def open_log(path: str) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
