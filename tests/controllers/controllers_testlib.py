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
