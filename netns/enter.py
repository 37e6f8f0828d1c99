"""Runs work inside a network namespace without moving the caller's thread.

A network namespace belongs to a thread in Linux (setns(2) changes only the calling thread), so
the work runs in a fresh thread that joins the namespace and ends with it: the caller's thread
is never in the wrong namespace, whatever the work raises. Sockets opened there stay bound to
that namespace after the thread is gone, which is how the other modules reach into a pod.
"""
from __future__ import annotations

import os
# The C module under `threading`, whose import costs a plugin process more than its netlink work.
import _thread

CLONE_NEWNET = 0x40000000


def _libc_setns(fd: int, nstype: int) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


# os.setns exists from Python 3.12 on; older interpreters go through libc.
_setns = getattr(os, "setns", _libc_setns)


def join_netns(path: str) -> None:
    """Moves the CURRENT thread into the netns at `path`. Only for a thread that was started to
    live in that namespace (a server thread in a test, the worker below)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(fd, CLONE_NEWNET)
    finally:
        os.close(fd)


def run_in_netns(path: str, fn, *args):
    """Returns fn(*args) run in a new thread inside the netns at `path`; re-raises what it raises.
    A missing path raises FileNotFoundError before fn runs."""
    outcome: list = []
    done = _thread.allocate_lock()
    done.acquire()

    def worker() -> None:
        try:
            join_netns(path)
            outcome.append((True, fn(*args)))
        except BaseException as exc:  # handed to the caller's thread below
            outcome.append((False, exc))
        finally:
            done.release()

    _thread.start_new_thread(worker, ())
    done.acquire()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value
