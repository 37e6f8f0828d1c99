"""Finding shims and their containers' ends from the shim root alone, no live shim needed: what
a restarted kubelet uses to pick its containers up again."""
from __future__ import annotations

import json
import os
import socket

from shim import exitfile, layout
from shim.layout import DEFAULT_ROOT
from shim.records import ExitStatus, ShimError, ShimInfo, checked_id


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


def remove_dead(container_id: str, shim_root: str = DEFAULT_ROOT) -> None:
    """Removes the state of a shim that died (SIGKILL, a crash) once its container has been dealt
    with through the runtime; ShimError if the shim still runs (use Client.shutdown)."""
    if is_alive(container_id, shim_root):
        raise ShimError(f"the shim of {container_id} is running: shut it down instead")
    layout.remove_state_dir(layout.state_dir(shim_root, container_id))
