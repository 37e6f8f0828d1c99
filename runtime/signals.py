"""Signal names as runc's callers write them: "TERM", "SIGTERM", "15", "SIGRTMIN+3"."""
from __future__ import annotations

import signal

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
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise PycontainerError(f"signal: unknown signal {text!r}") from None
