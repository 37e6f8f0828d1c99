"""Containers on our own parts: an overlayfs snapshot of the image as the root filesystem
(overlay), config.json from container_spec, one shim per container that runs it through the
runtime and writes its CRI log (shim), exits learned from the shims (exit_watcher), and a
record per container under <root>/containers/<id>/ beside its bundle, so that a restarted
kubelet adopts every container its shim still runs."""
from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Callable

import shim
from overlay import layers, snapshots
from overlay.errors import ImageError
from shim import layout as shim_layout
from shim.runtime_cli import RuntimeCommand, default_runtime

from cri import attach, container_spec, exec_stream
from cri.api import (CONTAINER_CREATED, CONTAINER_EXITED, CONTAINER_RUNNING, CONTAINER_UNKNOWN,
                     ContainerConfig, ContainerEvent, ContainerMetadata, ContainerStatus, CRIError,
                     ExecResult, NotFound, PodSandboxConfig)
from cri.checkpoint import Records
from cri.exit_watcher import ExitWatcher
from cri.images import Images, repo_digest
from cri.sandboxes import Sandboxes
from cri.streaming.backend import Session, StreamError
from kubeapi import timefmt

EventHandler = Callable[[ContainerEvent], None]


class Containers:
    def __init__(self, root: str, images: Images, sandboxes: Sandboxes, shim_root: str,
                 runtime_root: str, unified_cgroups: bool) -> None:
        self.records = Records(os.path.join(root, "containers"), "container.json")
        self.images = images
        self.sandboxes = sandboxes
        self.shim_root = shim_root
        self.runtime_root = runtime_root
        self.unified_cgroups = unified_cgroups
        self._lock = threading.Lock()
        # Record writes one at a time, in the order of the changes, but apart from _lock: a
        # write waits for the disk, and every pod worker's runtime read takes _lock.
        self._saving = threading.Lock()
        self._exited: dict[str, threading.Event] = {}
        self._handlers: list[EventHandler] = []
        records, self._broken = self.records.load_all()
        self._by_id: dict[str, dict] = records
        self._by_pod: dict[str, set[str]] = {}
        for record in records.values():
            self._by_pod.setdefault(record["pod_uid"], set()).add(record["id"])
        self.watcher = ExitWatcher(shim_root, self._on_exit)

    def subscribe(self, handler: EventHandler) -> None:
        self._handlers.append(handler)

    def adopt(self) -> None:
        """After a restart: containers whose shim still runs them are watched again, those
        that ended meanwhile get their exit from the shim's record, the rest are unknown. A
        container recorded as created may have been started just before the kubelet died: its
        shim says so."""
        for record in list(self._by_id.values()):
            container_id = record["id"]
            if record["state"] == CONTAINER_CREATED:
                self._adopt_started(record)
            if record["state"] != CONTAINER_RUNNING:
                continue
            self._exited[container_id] = threading.Event()
            exit_status = shim.read_exit(container_id, self.shim_root)
            if exit_status is not None:
                self._finish(record, exit_status)
            elif not self.watcher.watch(container_id):
                self._lost(record)

    def _adopt_started(self, record: dict) -> None:
        try:
            with shim.connect(record["id"], self.shim_root) as client:
                started = client.state().started_at
        except shim.ShimError:
            return      # never started: it stays created
        self._update(record, state=CONTAINER_RUNNING,
                     started_at=int(timefmt.parse(started) * 1e9))

    # -- queries ------------------------------------------------------------------------------

    def get(self, container_id: str) -> dict:
        with self._lock:
            record = self._by_id.get(container_id)
        if record is None:
            raise NotFound(f"container {container_id} not found")
        return record

    def status(self, container_id: str) -> ContainerStatus:
        record = self.get(container_id)
        with self._lock:
            return _status(record)

    def _update(self, record: dict, **changes: object) -> None:
        """Changes a record (also from the exit watcher's thread) and saves it, unless the
        container was removed meanwhile."""
        with self._saving:
            with self._lock:
                record.update(changes)
                present = record["id"] in self._by_id
            if present:
                self.records.save(record["id"], record)

    def list(self, pod_uid: str | None = None, sandbox_id: str | None = None
             ) -> list[ContainerStatus]:
        with self._lock:
            if pod_uid is None:
                records = self._by_id.values()
            else:
                records = [self._by_id[i] for i in self._by_pod.get(pod_uid, ())]
            return [_status(r) for r in records
                    if sandbox_id is None or r["sandbox_id"] == sandbox_id]

    # -- lifecycle ----------------------------------------------------------------------------

    def create(self, sandbox_id: str, config: ContainerConfig,
               sandbox_config: PodSandboxConfig) -> str:
        sandbox = self.sandboxes.get(sandbox_id)
        image = self.images.record(config.image)
        image_config = self.images.config(image)
        container_id = secrets.token_hex(16)
        log_path = os.path.join(sandbox["log_directory"], config.log_path) \
            if config.log_path and sandbox["log_directory"] else ""
        record = {
            "id": container_id, "sandbox_id": sandbox_id, "pod_uid": sandbox["uid"],
            "name": config.metadata.name, "attempt": config.metadata.attempt,
            "created_at": time.time_ns(), "started_at": 0, "finished_at": 0,
            "state": CONTAINER_CREATED, "exit_code": 0, "reason": "", "message": "",
            "image": image.name, "image_ref": repo_digest(image), "labels": config.labels,
            "annotations": config.annotations, "log_path": log_path,
            "stop_signal": container_spec.stop_signal(image_config),
            "stdin": config.stdin, "stdin_once": config.stdin_once, "tty": config.tty,
        }
        # Recorded first: a crash from here on leaves what removal needs (the snapshot's key
        # is the container's ID).
        self.records.create(container_id, record)
        with self._lock:
            self._by_id[container_id] = record
            self._by_pod.setdefault(record["pod_uid"], set()).add(container_id)
        try:
            with self.images.store.adding():
                chain = layers.ensure_unpacked(self.images.store, image)
            rootfs = snapshots.create(self.images.store, container_id, chain)
            namespaces = self._sandbox_namespaces(sandbox)
            if config.linux.pid_target:
                namespaces.pid = self._pid_namespace(config.linux.pid_target)
            elif config.linux.pid_namespace:
                namespaces.pid = config.linux.pid_namespace
            spec = container_spec.build(container_id, config, image_config, rootfs,
                                        namespaces, self.unified_cgroups)
            with open(os.path.join(self.records.dir(container_id), "config.json"), "w") as f:
                f.write(json.dumps(spec))   # dumps encodes in C, dump in Python
            if log_path:
                os.makedirs(os.path.dirname(log_path), mode=0o755, exist_ok=True)
            if config.stdin:
                os.mkfifo(self._stdin_fifo(container_id), 0o600)
        except BaseException as e:
            self._discard(record)
            if isinstance(e, (container_spec.SpecError, ImageError, OSError)):
                raise CRIError(str(e)) from None
            raise
        return container_id

    def _sandbox_namespaces(self, sandbox: dict) -> container_spec.SandboxNamespaces:
        return container_spec.SandboxNamespaces(
            netns=sandbox["netns"], ipc=sandbox["pins"].get("ipc", ""),
            uts=sandbox["pins"].get("uts", ""), shm_dir=sandbox["shm"],
            hostname="" if sandbox["host_network"] else sandbox["hostname"],
            cgroup_parent=sandbox["cgroup_parent"], host_pid=sandbox["host_pid"])

    def _pid_namespace(self, target_id: str) -> str:
        """The PID namespace of a running container, by its init's /proc path (containerd's
        way for NamespaceMode TARGET)."""
        if self.get(target_id)["state"] != CONTAINER_RUNNING:
            raise CRIError(f"target container {target_id} is not running")
        try:
            with shim.connect(target_id, self.shim_root) as client:
                pid = client.state().pid
        except shim.ShimError as e:
            raise CRIError(f"target container {target_id}: {e}") from None
        return f"/proc/{pid}/ns/pid"

    def start(self, container_id: str) -> None:
        record = self.get(container_id)
        if record["state"] != CONTAINER_CREATED:
            raise CRIError(f"container {container_id} is {record['state']}, not created")
        self._exited[container_id] = threading.Event()
        try:
            shim.start(shim.ShimConfig(container_id, self.records.dir(container_id),
                                       log_path=record["log_path"] or None,
                                       stdin=self._stdin_fifo(container_id)
                                       if record.get("stdin") else None,
                                       stdin_once=bool(record.get("stdin_once")),
                                       shim_root=self.shim_root,
                                       runtime_root=self.runtime_root))
        except shim.ShimError as e:
            now = time.time_ns()
            self._update(record, state=CONTAINER_EXITED, exit_code=128, reason="StartError",
                         message=str(e), started_at=now, finished_at=now)
            self._exited[container_id].set()
            raise CRIError(str(e)) from None
        self._update(record, state=CONTAINER_RUNNING, started_at=time.time_ns())
        if not self.watcher.watch(container_id):
            self._on_exit(container_id, None)

    def stop(self, container_id: str, timeout: float) -> None:
        record = self.get(container_id)
        if record["state"] == CONTAINER_CREATED:
            now = time.time_ns()
            self._update(record, state=CONTAINER_EXITED, finished_at=now, started_at=now,
                         exit_code=128, reason="StartError",
                         message="stopped before it was started")
            return
        if record["state"] == CONTAINER_UNKNOWN:
            self._remove_orphan(container_id)   # its shim is gone: nothing else can stop it
            return
        if record["state"] != CONTAINER_RUNNING:
            return
        exited = self._exited.setdefault(container_id, threading.Event())
        if timeout > 0:
            self._signal(container_id, record["stop_signal"])
            if self._wait_exit(container_id, exited, timeout):
                return
        self._signal(container_id, "SIGKILL", all_processes=True)
        if not self._wait_exit(container_id, exited, 30):
            raise CRIError(f"container {container_id} did not stop after SIGKILL")

    def _wait_exit(self, container_id: str, exited: threading.Event, timeout: float) -> bool:
        """Waits for the exit event; once a second also asks the shim's exit record, in case
        the event cannot come (no watch on this container)."""
        deadline = time.monotonic() + timeout
        while not exited.wait(min(1.0, max(deadline - time.monotonic(), 0))):
            if shim.read_exit(container_id, self.shim_root) is not None or \
                    not shim.is_alive(container_id, self.shim_root):
                self._on_exit(container_id, None)
                return True
            if time.monotonic() >= deadline:
                return False
        return True

    def _signal(self, container_id: str, sig: str, all_processes: bool = False) -> None:
        try:
            with shim.connect(container_id, self.shim_root) as client:
                client.kill(sig, all=all_processes)
        except shim.ShimError:
            pass  # it stopped meanwhile (the exit event comes), or its shim is gone

    def remove(self, container_id: str) -> None:
        with self._lock:
            record = self._by_id.get(container_id)
        if record is None:
            return
        if record["state"] == CONTAINER_RUNNING:
            self.stop(container_id, 0)
        self._discard(record)

    def _discard(self, record: dict) -> None:
        """Everything of a container that is not running: shim and runtime state, snapshot,
        bundle, record."""
        container_id = record["id"]
        try:
            with shim.connect(container_id, self.shim_root) as client:
                client.shutdown()
        except shim.ShimError:
            self._remove_orphan(container_id)
        try:
            snapshots.remove(self.images.store, container_id)
        except ImageError as e:
            raise CRIError(str(e)) from None
        # out of the index first: no late exit writes the record again
        with self._saving, self._lock:
            self._by_id.pop(container_id, None)
            of_pod = self._by_pod.get(record["pod_uid"])
            if of_pod is not None:
                of_pod.discard(container_id)
                if not of_pod:
                    del self._by_pod[record["pod_uid"]]
        self.records.remove(container_id)
        self._exited.pop(container_id, None)

    def remove_leftovers(self) -> None:
        """Directories a crash left without a record (found at start)."""
        while self._broken:
            self.records.remove(self._broken.pop())

    def _remove_orphan(self, container_id: str) -> None:
        """For a container whose shim is gone: the shim library kills and deletes it."""
        try:
            shim.remove_dead(container_id, self.shim_root, self.runtime_root)
        except shim.ShimError as e:
            raise CRIError(str(e)) from None
        with self._lock:
            record = self._by_id.get(container_id)
        if record is not None and record["state"] != CONTAINER_EXITED:
            self._update(record, state=CONTAINER_EXITED, exit_code=137, reason="Error",
                         finished_at=time.time_ns())
        self._exited.setdefault(container_id, threading.Event()).set()

    def exec_sync(self, container_id: str, cmd: list[str], timeout: float) -> ExecResult:
        try:
            with shim.connect(container_id, self.shim_root) as client:
                r = client.exec(cmd, timeout=timeout or None)
        except shim.ShimError as e:
            raise CRIError(str(e)) from None
        return ExecResult(r.exit_code, r.stdout, r.stderr, r.timed_out)

    def _stdin_fifo(self, container_id: str) -> str:
        return os.path.join(self.records.dir(container_id), "stdin")

    def _running(self, container_id: str) -> dict:
        try:
            record = self.get(container_id)
        except NotFound as e:
            raise StreamError(str(e)) from None
        if record["state"] != CONTAINER_RUNNING:
            raise StreamError(f"container {container_id} is not running")
        return record

    def exec_stream(self, container_id: str, cmd: list[str], session: Session) -> int:
        self._running(container_id)
        # The runtime's log is the shim's runtime.log, beside that of every other call.
        runtime = RuntimeCommand(default_runtime(), self.runtime_root,
                                 os.path.join(shim_layout.state_dir(self.shim_root, container_id),
                                              shim_layout.RUNTIME_LOG))
        return exec_stream.run(runtime, container_id, cmd, session)

    def attach(self, container_id: str, session: Session) -> None:
        record = self._running(container_id)
        attach.run(self.shim_root, container_id,
                   self._stdin_fifo(container_id) if record.get("stdin") else None, session)

    def reopen_log(self, container_id: str) -> None:
        try:
            with shim.connect(container_id, self.shim_root) as client:
                client.reopen_log()
        except shim.ShimError as e:
            raise CRIError(str(e)) from None

    # -- exits --------------------------------------------------------------------------------

    def _on_exit(self, container_id: str, status: shim.ExitStatus | None) -> None:
        with self._lock:
            record = self._by_id.get(container_id)
        if record is None:
            return
        if status is None:
            status = shim.read_exit(container_id, self.shim_root)
        if status is None:
            self._lost(record)
        else:
            self._finish(record, status)

    def _finish(self, record: dict, status: shim.ExitStatus) -> None:
        code = status.exit_code
        reason = "OOMKilled" if status.oom_killed else "Completed" if code == 0 else "Error"
        finished = status.finished_at
        self._update(record, state=CONTAINER_EXITED, exit_code=code, reason=reason,
                     finished_at=int(timefmt.parse(finished) * 1e9) if finished
                     else time.time_ns())
        self._notify(record)

    def _lost(self, record: dict) -> None:
        self._update(record, state=CONTAINER_UNKNOWN)
        self._notify(record)

    def _notify(self, record: dict) -> None:
        self._exited.setdefault(record["id"], threading.Event()).set()
        event = ContainerEvent(record["id"], record["sandbox_id"], record["pod_uid"],
                               CONTAINER_EXITED)
        for handler in self._handlers:
            handler(event)

    def close(self) -> None:
        self.watcher.stop()


def _status(r: dict) -> ContainerStatus:
    return ContainerStatus(
        id=r["id"], pod_sandbox_id=r["sandbox_id"],
        metadata=ContainerMetadata(r["name"], r["attempt"]), state=r["state"],
        created_at=r["created_at"], started_at=r["started_at"], finished_at=r["finished_at"],
        exit_code=r["exit_code"], image=r["image"], image_ref=r["image_ref"],
        reason=r["reason"], message=r["message"], labels=r["labels"],
        annotations=r["annotations"], log_path=r["log_path"])

