"""Signal names as runc's callers write them: "TERM", "SIGTERM", "15", "SIGRTMIN+3".

Read from `_signal`, the C module under `signal`: the Python one builds its enums on import
(enum and friends, some 4 ms of every `kill` and of each shim's private memory)."""
from __future__ import annotations

import _signal as signal

from runtime.errors import PycontainerError


def parse(text: str) -> int:
    if text.isdigit():
        number = int(text)
        if 0 < number < signal.NSIG:
            return number
        raise PycontainerError(f"signal: {text} is not a valid signal number")
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    for base, number in (("SIGRTMIN+", signal.SIGRTMIN), ("SIGRTMAX-", signal.SIGRTMAX)):
        if name.startswith(base) and name[len(base):].isdigit():
            offset = int(name[len(base):])
            value = number + offset if base.endswith("+") else number - offset
            if signal.SIGRTMIN <= value <= signal.SIGRTMAX:
                return value
    number = getattr(signal, name, None) if "_" not in name else None  # not SIG_IGN and the like
    if not isinstance(number, int):
        raise PycontainerError(f"signal: unknown signal {text!r}")
    return number
