"""Which code a shim runs, as a short version string: the interpreter and the newest modification
time of the packages the shim process uses. It names the zygote's socket, so that a caller
running other code (an upgrade, an edit) gets a zygote of its own code, never an older one."""
from __future__ import annotations

import os
import sys
import zlib

# The packages whose code runs in a shim process.
_PACKAGES = ("shim", "runtime", "cgroups")


def code_fingerprint() -> str:
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    newest = 0
    for package in _PACKAGES:
        directory = os.path.join(top, package)
        newest = max(newest, os.stat(directory).st_mtime_ns)  # a module removed
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.name.endswith(".py"):
                    newest = max(newest, entry.stat().st_mtime_ns)
    # The prefix names the virtualenv; the real path the interpreter (python and python3 alike).
    interpreter = zlib.crc32(f"{sys.prefix}:{os.path.realpath(sys.executable)}".encode())
    return f"{interpreter:08x}-{newest:x}"
