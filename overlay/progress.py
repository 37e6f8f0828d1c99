"""The per-layer progress display of pull and import: one line per blob, rewritten in place on
a terminal; nothing when the output is not a terminal."""
from __future__ import annotations

import sys
import time
from typing import TextIO

from overlay.digest import short

_INTERVAL = 0.1


class Progress:
    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._last = 0.0

    def bytes(self, digest: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last < _INTERVAL:
            return
        self._last = now
        self._show(digest, f"downloading {_size(done)} / {_size(total)}"
                   f" ({100 * done // max(total, 1)}%)", final=False)

    def status(self, digest: str, text: str) -> None:
        self._show(digest, text, final=text in ("downloaded", "exists", "unpacked"))

    def _show(self, digest: str, text: str, final: bool) -> None:
        if not self.enabled:
            return
        line = f"{short(digest)}: {text}"
        self.stream.write("\r\x1b[K" + line + ("\n" if final else ""))
        self.stream.flush()


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return f"{n} B"
