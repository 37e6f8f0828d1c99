"""The runtime's log, as runc writes it: logrus text lines, or JSON lines
{"level": ..., "msg": ..., "time": ...} with --log-format json (callers such as the containerd
shim and conmon read the last error from there)."""
from __future__ import annotations

import os

from overlay.timefmt import rfc3339
from runtime import fastjson

LEVELS = ("debug", "info", "warning", "error")


class Log:
    __slots__ = ("path", "json", "debug_enabled", "_fd")

    def __init__(self, path: str | None, format: str = "text", debug: bool = False) -> None:
        self.path = path
        self.json = format == "json"
        self.debug_enabled = debug
        self._fd = -1

    @property
    def to_stderr(self) -> bool:
        return not self.path

    def _write(self, level: str, msg: str) -> None:
        stamp = rfc3339()
        if self.json:
            line = fastjson.dumps({"level": level, "msg": msg, "time": stamp})
        else:
            line = f"time={fastjson.dumps(stamp)} level={level} msg={fastjson.dumps(msg)}"
        data = (line + "\n").encode()
        if self.to_stderr:
            os.write(2, data)
            return
        if self._fd < 0:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        os.write(self._fd, data)

    def debug(self, msg: str) -> None:
        if self.debug_enabled:
            self._write("debug", msg)

    def warning(self, msg: str) -> None:
        self._write("warning", msg)

    def error(self, msg: str) -> None:
        """Logs the error; with a log file, the user still gets the plain line on stderr."""
        self._write("error", msg)
        if not self.to_stderr:
            os.write(2, (msg + "\n").encode())
