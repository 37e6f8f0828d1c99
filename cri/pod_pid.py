"""A pod-wide PID namespace (the CRI's NamespaceMode POD for pid, kubelet's
shareProcessNamespace): a PID namespace dies with its init, so unlike the IPC and UTS namespaces
it cannot be pinned by a bind mount. A small process holds it as containerd's pause container
does: `unshare --pid --fork --kill-child <sandbox dir>/pause infinity`, where pause is a link to
sleep (so that the pod's PID 1 is named pause, as containerd's), detached from the daemon (so
that a restarted daemon finds it), its PID in <sandbox dir>/pause.pid. The pod's containers join
the namespace of its pause, which is their PID 1."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

PID_FILE = "pause.pid"
PAUSE = "pause"
_START_TIMEOUT = 10.0


class PodPidError(Exception):
    """The holder did not start; one line."""


def _pid_file(directory: str) -> str:
    return os.path.join(directory, PID_FILE)


def _command(directory: str) -> list[str]:
    return ["unshare", "--pid", "--fork", "--kill-child", os.path.join(directory, PAUSE),
            "infinity"]


def _holder(directory: str) -> int | None:
    """The holder's PID if it still runs (checked by its command line), else None."""
    try:
        with open(_pid_file(directory)) as f:
            pid = int(f.read())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if f.read().split(b"\0")[:-1] != [a.encode() for a in _command(directory)]:
                return None
    except (OSError, ValueError):
        return None
    return pid


def _init_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = f.read().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def start(directory: str) -> int:
    """Starts the holder for the sandbox whose directory this is; the PID of its init."""
    sleep = shutil.which("sleep")
    if sleep is None:
        raise PodPidError("sleep: not found in PATH")
    os.symlink(sleep, os.path.join(directory, PAUSE))
    # setsid -f: the holder is not our child, so no daemon needs to reap it and it outlives us.
    subprocess.run(["setsid", "-f", "sh", "-c", 'echo $$ > "$0"; exec "$@"',
                    _pid_file(directory), *_command(directory)], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        holder = _holder(directory)
        init = _init_of(holder) if holder else None
        if init is not None:
            return init
        time.sleep(0.002)
    stop(directory)
    raise PodPidError("the pod's PID namespace holder did not start")


def namespace(directory: str) -> str:
    """The path of the pod's PID namespace, "" if it has none (or its holder is gone)."""
    holder = _holder(directory)
    init = _init_of(holder) if holder else None
    return f"/proc/{init}/ns/pid" if init else ""


def init_pid(directory: str) -> int:
    holder = _holder(directory)
    return (_init_of(holder) or 0) if holder else 0


def stop(directory: str) -> None:
    """Ends the holder (its init dies with it, and the namespace with both); repeatable."""
    holder = _holder(directory)
    if holder is not None:
        try:
            os.kill(holder, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        os.unlink(_pid_file(directory))
    except FileNotFoundError:
        pass
