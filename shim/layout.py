"""Where a shim keeps its state: one directory per container under the shim root (0700), and the
zygote's own directory beside them.

    <root>/<id>/shim.sock      the control socket (0600)
    <root>/<id>/shim.json      who the shim is: its PID, the container's PID, bundle, log path
    <root>/<id>/exit.json      how the container ended (written atomically once it exits)
    <root>/<id>/runtime.log    the runtime's own log (--log, JSON lines)
    <root>/<id>/shim.log       the shim's stderr (a crash's traceback lands here)
    <root>/@zygote/            the zygote that forks new shims ("@" is never in a container ID):
                               zygote-<version>.sock and .pid, zygote.log, zygote.lock
"""
from __future__ import annotations

import os
import socket

DEFAULT_ROOT = "/run/pycontainer-shim"
ZYGOTE_DIR = "@zygote"
SOCKET = "shim.sock"
INFO = "shim.json"
EXIT = "exit.json"
RUNTIME_LOG = "runtime.log"
SHIM_LOG = "shim.log"
CONSOLE_SOCKET = "console.sock"
CONTAINER_PID = "container.pid"
# sun_path holds 108 bytes with the terminating NUL.
MAX_SOCKET_PATH = 107


def state_dir(root: str, container_id: str) -> str:
    return os.path.join(root, container_id)


def socket_path(root: str, container_id: str) -> str:
    return os.path.join(root, container_id, SOCKET)


def zygote_dir(root: str) -> str:
    return os.path.join(root, ZYGOTE_DIR)


def zygote_socket(root: str, version: str) -> str:
    return os.path.join(root, ZYGOTE_DIR, f"zygote-{version}.sock")


def zygote_pid_file(root: str, version: str) -> str:
    return os.path.join(root, ZYGOTE_DIR, f"zygote-{version}.pid")


def remove_state_dir(path: str) -> None:
    """The shim's directory and the files in it (it has no subdirectories)."""
    try:
        for name in os.listdir(path):
            os.unlink(os.path.join(path, name))
        os.rmdir(path)
    except FileNotFoundError:
        pass


def bind_private_socket(path: str) -> socket.socket:
    """A listening unix socket at path, 0600 from the start (no moment where others could
    connect)."""
    if len(path.encode()) > MAX_SOCKET_PATH:
        raise ValueError(f"socket path {path} is longer than {MAX_SOCKET_PATH} bytes: use a "
                          "shorter shim root")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    old = os.umask(0o177)
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    sock.listen(64)
    return sock
