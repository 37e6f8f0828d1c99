"""Container exits as events, without polling: for each running container one shim client
holding a pending `wait` (ShimClient.send_wait), all of them in one selector thread. The shim
answers when the container exits; a connection that closes without an answer means the shim
itself died."""
from __future__ import annotations

import logging
import os
import selectors
import threading
from collections.abc import Callable

import shim

log = logging.getLogger("cri.exits")

# (container ID, how it ended, or None when the shim went away without saying)
ExitHandler = Callable[[str, "shim.ExitStatus | None"], None]


class ExitWatcher:
    def __init__(self, shim_root: str, on_exit: ExitHandler) -> None:
        self.shim_root = shim_root
        self.on_exit = on_exit
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._pending: list[tuple[str, shim.ShimClient]] = []
        self._lock = threading.Lock()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="exit-watcher", daemon=True)
        self._thread.start()

    def watch(self, container_id: str) -> bool:
        """Starts watching; False if no shim answers (it is gone already)."""
        if self._stopped:
            return False
        try:
            client = shim.connect(container_id, self.shim_root)
        except shim.ShimError:
            return False
        try:
            client.send_wait()
        except shim.ShimError:
            client.close()
            return False
        with self._lock:
            self._pending.append((container_id, client))
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
        while not self._stopped:
            for key, _ in self._selector.select():
                if key.data is None:
                    self._drain_wakeups()
                    continue
                container_id, client = key.data
                try:
                    status = client.exit_answer()
                    if status is None:
                        continue    # the answer is not whole yet
                except shim.ShimError:
                    status = None
                self._selector.unregister(client)
                client.close()
                try:
                    self.on_exit(container_id, status)
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
        for container_id, client in pending:
            self._selector.register(client, selectors.EVENT_READ, (container_id, client))
