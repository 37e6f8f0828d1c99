"""shim.start(): asks the zygote of the shim root for a new shim (starting the zygote first when
none answers) and returns once the container runs, or raises the runtime's error."""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys

from shim import fingerprint, layout, protocol
from shim.records import ShimConfig, ShimError, ShimInfo, checked_id

_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def start(config: ShimConfig) -> ShimInfo:
    """Starts the container of `config` under a new shim; returns once it runs.

    Raises ShimError with one line: the runtime's error, or what was wrong with the config.
    Nothing is left behind on failure (no shim, state directory or container).
    """
    checked_id(config.id)
    root = os.path.abspath(config.shim_root)
    sock_path = layout.socket_path(root, config.id)
    if len(sock_path.encode()) > layout.MAX_SOCKET_PATH:
        raise ShimError(f"shim_root: {sock_path} would be longer than a unix socket path may be "
                        f"({layout.MAX_SOCKET_PATH} bytes)")
    runtime = shutil.which(config.runtime)
    if runtime is None:
        raise ShimError(f"runtime: {config.runtime} is not an executable")
    request = {
        "op": "start", "id": config.id,
        "bundle": os.path.abspath(config.bundle), "root": root, "runtime": os.path.abspath(runtime),
        "runtime_root": os.path.abspath(config.runtime_root),
        "log_path": config.log_path and os.path.abspath(config.log_path),
        "stdin": config.stdin and os.path.abspath(config.stdin),
        "stdin_once": config.stdin_once,
    }
    answer = _ask_zygote(root, request)
    if not answer.get("ok"):
        raise ShimError(answer.get("error") or "the shim did not start")
    return ShimInfo(id=config.id, pid=answer["pid"], container_pid=answer["container_pid"],
                    socket=sock_path, state_dir=layout.state_dir(root, config.id))


def _ask_zygote(root: str, request: dict) -> dict:
    with _connect_zygote(root) as sock:
        sock.sendall(protocol.encode(request))
        data = b""
        while b"\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                raise ShimError(f"the shim for {request['id']} died while starting (see "
                                f"{layout.zygote_dir(root)}/zygote.log)")
            data += chunk
        answer = json.loads(data.split(b"\n", 1)[0])
        if not answer.get("ok"):
            # The failed shim's processes hold this connection until they are gone: wait for
            # that, so that nothing of it is left when we return.
            while sock.recv(65536):
                pass
    return answer


def _connect_zygote(root: str) -> socket.socket:
    path = layout.zygote_socket(root, fingerprint.code_fingerprint())
    sock = _try_connect(path)
    if sock is not None:
        return sock
    directory = layout.zygote_dir(root)
    os.makedirs(root, 0o700, exist_ok=True)
    os.makedirs(directory, 0o700, exist_ok=True)
    lock = os.open(os.path.join(directory, "zygote.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                   0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one spawner at a time; the others then connect
        sock = _try_connect(path)
        if sock is None:
            _spawn_zygote(root)
            sock = _try_connect(path)
        if sock is None:
            raise ShimError(f"the shim zygote does not answer on {path}")
        return sock
    finally:
        os.close(lock)


def _try_connect(path: str) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        return None
    return sock


def _spawn_zygote(root: str) -> None:
    """Runs `python -m shim.zygote ROOT` in a new session; it returns once the zygote listens.
    Isolated (-I) and with a bare environment: the zygote and every shim it forks outlive the
    caller and must not carry its settings."""
    env = {"PATH": os.environ.get("PATH", _DEFAULT_PATH)}
    done = subprocess.run([sys.executable, "-I", "-m", "shim.zygote", root], cwd="/", env=env,
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, start_new_session=True)
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        raise ShimError(f"the shim zygote did not start: {lines[-1] if lines else done.returncode}")
