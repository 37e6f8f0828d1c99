"""Helpers of the controller tests: bounded polling and recording informer handlers."""
from __future__ import annotations

import threading
import time


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.05, what: str = "condition"):
    """The predicate's first truthy value; AssertionError naming `what` after the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not met within {timeout} s")
        time.sleep(interval)


class Recorder:
    """Informer handlers that record (kind, name) events, thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple[str, str, object]] = []

    def handlers(self) -> dict:
        return {"on_add": lambda o: self._rec("add", o),
                "on_update": lambda old, new: self._rec("update", new, old),
                "on_delete": lambda o: self._rec("delete", o)}

    def _rec(self, kind: str, obj, extra=None) -> None:
        name = obj.obj["metadata"]["name"] if hasattr(obj, "key") else obj["metadata"]["name"]
        with self.lock:
            self.events.append((kind, name, obj if extra is None else (extra, obj)))

    def seen(self, kind: str, name: str) -> list:
        with self.lock:
            return [e[2] for e in self.events if e[0] == kind and e[1] == name]


class ManagerProcess:
    """A pycontroller-manager process whose log goes to a file the test reads."""

    def __init__(self, server, *args: str, log_dir: str) -> None:
        import os
        import subprocess
        import sys
        import tempfile
        fd, self.log_path = tempfile.mkstemp(prefix="pycm-", suffix=".log", dir=log_dir)
        self.proc = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "pycontroller-manager"),
             "--kubeconfig", server.kubeconfig, *args],
            stdout=fd, stderr=fd, stdin=subprocess.DEVNULL)
        os.close(fd)

    def log(self) -> str:
        with open(self.log_path) as f:
            return f.read()

    def wait_log(self, text: str, timeout: float = 20.0) -> str:
        return wait_for(lambda: text in self.log() and self.log(), timeout,
                        what=f"{text!r} in the manager's log")

    def stop(self, sig=None, timeout: float = 20.0) -> int:
        import signal
        import subprocess
        if self.proc.poll() is None:
            self.proc.send_signal(sig or signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_manager(request, server, *args: str) -> ManagerProcess:
    """A manager stopped (SIGTERM, then SIGKILL) at the end of the test, whatever happens."""
    manager = ManagerProcess(server, *args, log_dir=str(request.getfixturevalue("tmp_path")))
    request.addfinalizer(manager.stop)
    return manager
