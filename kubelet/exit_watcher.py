"""Container exits as events, without polling: for each running container one connection to
its shim carrying a pending `wait` request (shim.protocol), all of them in one selector thread.
The shim answers when the container exits; a connection that closes without an answer means
the shim itself died."""
from __future__ import annotations

import json
import logging
import os
import selectors
import socket
import threading
from collections.abc import Callable

from shim import layout, protocol

log = logging.getLogger("kubelet.exits")

# (container ID, the exit record, or None when the shim went away without one)
ExitHandler = Callable[[str, dict | None], None]


class ExitWatcher:
    def __init__(self, shim_root: str, on_exit: ExitHandler) -> None:
        self.shim_root = shim_root
        self.on_exit = on_exit
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._pending: list[tuple[str, socket.socket]] = []
        self._lock = threading.Lock()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="exit-watcher", daemon=True)
        self._thread.start()

    def watch(self, container_id: str) -> bool:
        """Starts watching; False if no shim answers (it is gone already)."""
        if self._stopped:
            return False
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.connect(layout.socket_path(self.shim_root, container_id))
            sock.sendall(protocol.encode({"op": "wait"}))
        except OSError:
            sock.close()
            return False
        sock.setblocking(False)
        with self._lock:
            self._pending.append((container_id, sock))
        os.write(self._wake_w, b"x")
        return True

    def stop(self) -> None:
        """Ends the watch; a second call does nothing (the wake-up pipe is closed by then, and
        its descriptor number may already be another file's)."""
        if self._stopped:
            return
        self._stopped = True
        os.write(self._wake_w, b"x")
        self._thread.join()

    def _run(self) -> None:
        buffers: dict[int, bytes] = {}
        while not self._stopped:
            for key, _ in self._selector.select():
                if key.data is None:
                    self._drain_wakeups()
                    continue
                container_id, sock = key.data
                try:
                    chunk = sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                data = buffers.get(sock.fileno(), b"") + chunk
                if chunk and b"\n" not in data:
                    buffers[sock.fileno()] = data
                    continue
                buffers.pop(sock.fileno(), None)
                self._selector.unregister(sock)
                sock.close()
                try:
                    self.on_exit(container_id, _exit_record(data))
                except Exception:  # noqa: BLE001 - one container's trouble must not end the watch
                    log.exception("handling the exit of container %s", container_id)
        for key in list(self._selector.get_map().values()):
            if key.data is not None:
                key.data[1].close()
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            pending, self._pending = self._pending, []
        for container_id, sock in pending:
            self._selector.register(sock, selectors.EVENT_READ, (container_id, sock))


def _exit_record(data: bytes) -> dict | None:
    line = data.split(b"\n", 1)[0]
    try:
        answer = json.loads(line) if line else None
    except ValueError:
        return None
    if isinstance(answer, dict) and answer.get("ok"):
        return answer.get("exit")
    return None
