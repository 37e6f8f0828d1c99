"""SIGTERM and SIGINT for the daemons, acted on outside a signal handler.

A Python signal handler runs in the main thread between two bytecodes, so it can run inside
threading code that holds the very lock it then needs: `Event.set()` from a handler deadlocks
when the signal lands while the main thread is in the same Event's `wait()` or `set()` (a
controller manager hung that way after its API server was killed, 1 run in 4). Here the
Python handler does nothing; the interpreter's C handler writes the signal's number to a
wakeup pipe, and a thread of ours reads it and runs the action in ordinary thread context."""
from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def on_stop_signals(action: Callable[[], object]) -> None:
    """Runs `action` in a thread of its own at each SIGTERM or SIGINT. Main thread only (the
    wakeup fd is the process's one)."""
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    os.set_blocking(write_end, False)
    for sig in STOP_SIGNALS:
        signal.signal(sig, _ignore)
    signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)

    def relay() -> None:
        while True:
            received = os.read(read_end, 64)
            if not received:
                return
            if any(number in STOP_SIGNALS for number in received):
                action()

    threading.Thread(target=relay, name="stop-signals", daemon=True).start()


def _ignore(_signum: int, _frame: object) -> None:
    """The Python-level handler: the wakeup pipe carries the signal to the relay thread."""
