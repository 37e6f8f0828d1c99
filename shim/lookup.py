"""Finding shims and their containers' ends from the shim root alone, no live shim needed: what
a restarted kubelet uses to pick its containers up again."""
from __future__ import annotations

import json
import os
import socket
import subprocess

from shim import exitfile, layout
from shim.layout import DEFAULT_ROOT
from shim.records import RUNTIME_ROOT, ExitStatus, ShimError, ShimInfo, checked_id
from shim.runtime_cli import default_runtime, error_line


def read_exit(container_id: str, shim_root: str = DEFAULT_ROOT) -> ExitStatus | None:
    """How the container ended, from the shim's exit file; None while it runs (or when its shim
    state is gone: after shutdown, or if the shim died before the container ended)."""
    record = exitfile.read(layout.state_dir(shim_root, checked_id(container_id)))
    return ExitStatus.from_record(record) if record else None


def list_shims(shim_root: str = DEFAULT_ROOT) -> list[ShimInfo]:
    """Every shim whose container started under this root, running or not (see is_alive)."""
    try:
        names = sorted(os.listdir(shim_root))
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        path = os.path.join(shim_root, name, layout.INFO)
        try:
            with open(path, "rb") as f:
                info = json.loads(f.read())
        except (FileNotFoundError, NotADirectoryError, ValueError):
            continue  # the zygote's directory, or a shim still starting
        found.append(ShimInfo(id=info["id"], pid=info["pid"], container_pid=info["container_pid"],
                              socket=layout.socket_path(shim_root, name),
                              state_dir=layout.state_dir(shim_root, name)))
    return found


def is_alive(container_id: str, shim_root: str = DEFAULT_ROOT) -> bool:
    """Whether the shim answers on its socket (a PID alone could have been reused)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect(layout.socket_path(shim_root, checked_id(container_id)))
        return True
    except OSError:
        return False
    finally:
        sock.close()


def remove_dead(container_id: str, shim_root: str = DEFAULT_ROOT,
                runtime_root: str = RUNTIME_ROOT, runtime: str | None = None) -> None:
    """Removes what a shim that died (SIGKILL, a crash) left: its container, deleted as the
    shim's own shutdown does (`runtime delete --force`, which kills it if it still runs), then
    the shim's state. ShimError if the shim still runs (use ShimClient.shutdown) or the runtime
    cannot delete the container."""
    if is_alive(container_id, shim_root):
        raise ShimError(f"the shim of {container_id} is running: shut it down instead")
    argv = [runtime or default_runtime(), "--root", runtime_root, "delete", "--force",
            checked_id(container_id)]
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, check=False)
    if done.returncode != 0:
        # error_line reads a wait status: a signal in the low bits, else the code above them
        status = -done.returncode if done.returncode < 0 else done.returncode << 8
        raise ShimError(error_line("delete", status, done.stderr))
    layout.remove_state_dir(layout.state_dir(shim_root, container_id))
