"""Helpers of the controller tests: bounded polling, recording informer handlers, controllers
run in the test's process, pods deleted without a kubelet, and a pycontroller-manager
process."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator

from controllers import manager, registry
from controllers.context import Options
from kubeapi.status import ApiError
from testlib import waiting
from testlib.processes import stop


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.05, what: str = "condition"):
    """The predicate's first truthy value; AssertionError naming `what` after the timeout."""
    return waiting.wait_for(predicate, timeout, interval, what)


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


def start_recording(informer) -> Recorder:
    """A Recorder of the informer's events, the informer started."""
    rec = Recorder()
    informer.add_event_handler(**rec.handlers())
    informer.start()
    return rec


@contextlib.contextmanager
def running(client, names: list[str], options: Options | None = None) -> Iterator[None]:
    """The named controllers (--controllers names) running in this process as the manager runs
    them, until the block ends."""
    stop_event = threading.Event()
    thread = threading.Thread(target=manager.run, args=(
        client, registry.select(names), options or Options(), stop_event, 0.0), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop_event.set()
        thread.join(15)


def delete_pods(client, ns: str) -> None:
    """Deletes the namespace's pods at once, finalizers first: no kubelet is there to end
    them. A pod gone meanwhile is skipped."""
    pods = f"/api/v1/namespaces/{ns}/pods"
    for pod in client.get(pods)["items"]:
        path = f"{pods}/{pod['metadata']['name']}"
        try:
            if pod["metadata"].get("finalizers"):
                client.patch(path, {"metadata": {"finalizers": None}})
            client.delete(path, {"gracePeriodSeconds": 0})
        except ApiError:
            pass


class ManagerProcess:
    """A pycontroller-manager process whose log goes to a file the test reads."""

    def __init__(self, server, *args: str, log_dir: str) -> None:
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
        stop(self.proc, sig or signal.SIGTERM, timeout)
        return self.proc.returncode


def start_manager(request, server, *args: str) -> ManagerProcess:
    """A manager stopped (SIGTERM, then SIGKILL) at the end of the test, whatever happens."""
    manager = ManagerProcess(server, *args, log_dir=str(request.getfixturevalue("tmp_path")))
    request.addfinalizer(manager.stop)
    return manager
