"""An in-memory runtime and image service for the kubelet's unit tests: the verbs of cri.api
with the CRI's rules (a stopped sandbox runs no container, removing a sandbox removes its
containers, removing what is gone is no error), and no kernel object made. The test plays the
runtime's own part: a container exits (exit), a verb fails once (fail), an image is in the store
or cannot be pulled; `calls` lists the verbs the kubelet called, in order."""
from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from cri.api import (CONTAINER_CREATED, CONTAINER_EXITED, CONTAINER_RUNNING, SANDBOX_NOTREADY,
                     SANDBOX_READY, ContainerConfig, ContainerEvent, ContainerMetadata,
                     ContainerStatus, CRIError, ExecResult, Image, ImageNotFound, ImageService,
                     NotFound, PodSandboxConfig, PodSandboxStatus, RuntimeService)

# What a container stopped by its stop signal (timeout > 0) or by SIGKILL exits with.
STOPPED_EXIT_CODE = 143
KILLED_EXIT_CODE = 137


class FakeRuntime(RuntimeService, ImageService):
    def __init__(self, images: tuple[str, ...] = (), unpullable: tuple[str, ...] = (),
                 pod_ip: str = "198.18.0.2", clock: Callable[[], float] = time.time) -> None:
        """images: refs the store holds; unpullable: refs whose pull fails; clock: seconds
        since the epoch, for every time the fake records."""
        self.clock = clock
        self.pod_ip = pod_ip
        self.unpullable = set(unpullable)
        self.calls: list[tuple] = []
        # what exec_sync gives for a command (every container alike); success with no output else
        self.exec_results: dict[tuple[str, ...], ExecResult] = {}
        self._images = {ref: _image(ref) for ref in images}
        self._failures: dict[str, str] = {}
        self._sandboxes: dict[str, PodSandboxStatus] = {}
        self._containers: dict[str, ContainerStatus] = {}
        self._handlers: list[Callable[[ContainerEvent], None]] = []
        self._next_id = 0
        self._last_time = 0
        self._lock = threading.RLock()

    # -- what the test does -------------------------------------------------------------------

    def fail(self, verb: str, message: str) -> None:
        """The next call of verb (a method name: create_container, pull_image, ...) raises
        CRIError(message)."""
        self._failures[verb] = message

    def exit(self, container_id: str, exit_code: int, reason: str = "") -> None:
        """The running container ends on its own; subscribers hear of it."""
        with self._lock:
            c = self._containers[container_id]
            self._end(c, exit_code, reason)
        self._notify(c)

    def verbs(self) -> list[str]:
        return [call[0] for call in self.calls]

    # -- sandboxes ----------------------------------------------------------------------------

    def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        self._call("run_pod_sandbox", config.metadata.name)
        with self._lock:
            sandbox_id = self._new_id("sandbox")
            self._sandboxes[sandbox_id] = PodSandboxStatus(
                id=sandbox_id, metadata=config.metadata, state=SANDBOX_READY,
                created_at=self._now(), ips=[] if config.host_network else [self.pod_ip],
                labels=dict(config.labels), annotations=dict(config.annotations),
                host_network=config.host_network, log_directory=config.log_directory,
                cgroup_parent=config.cgroup_parent)
        return sandbox_id

    def stop_pod_sandbox(self, sandbox_id: str) -> None:
        self._call("stop_pod_sandbox", sandbox_id)
        with self._lock:
            sandbox = self._sandbox(sandbox_id)
            stopped = [c for c in self._containers.values()
                       if c.pod_sandbox_id == sandbox_id and c.state == CONTAINER_RUNNING]
            for c in stopped:
                self._end(c, KILLED_EXIT_CODE, "")
            sandbox.state, sandbox.ips = SANDBOX_NOTREADY, []
        for c in stopped:
            self._notify(c)

    def remove_pod_sandbox(self, sandbox_id: str) -> None:
        self._call("remove_pod_sandbox", sandbox_id)
        with self._lock:
            for c in [c for c in self._containers.values() if c.pod_sandbox_id == sandbox_id]:
                del self._containers[c.id]
            self._sandboxes.pop(sandbox_id, None)

    def pod_sandbox_status(self, sandbox_id: str) -> PodSandboxStatus:
        with self._lock:
            return _copy(self._sandbox(sandbox_id))

    def list_pod_sandboxes(self, pod_uid: str | None = None) -> list[PodSandboxStatus]:
        with self._lock:
            return [_copy(s) for s in self._sandboxes.values()
                    if pod_uid is None or s.metadata.uid == pod_uid]

    # -- containers ---------------------------------------------------------------------------

    def create_container(self, sandbox_id: str, config: ContainerConfig,
                         sandbox_config: PodSandboxConfig) -> str:
        self._call("create_container", config.metadata.name)
        with self._lock:
            sandbox = self._sandbox(sandbox_id)
            if config.image not in self._images:
                raise ImageNotFound(f"image {config.image} not found")
            container_id = self._new_id("container")
            log_path = os.path.join(sandbox.log_directory, config.log_path) \
                if config.log_path and sandbox.log_directory else ""
            self._containers[container_id] = ContainerStatus(
                id=container_id, pod_sandbox_id=sandbox_id,
                metadata=ContainerMetadata(config.metadata.name, config.metadata.attempt),
                state=CONTAINER_CREATED, created_at=self._now(), image=config.image,
                image_ref=self._images[config.image].repo_digests[0],
                labels=dict(config.labels), annotations=dict(config.annotations),
                log_path=log_path)
        return container_id

    def start_container(self, container_id: str) -> None:
        self._call("start_container", container_id)
        with self._lock:
            c = self._container(container_id)
            if c.state != CONTAINER_CREATED:
                raise CRIError(f"container {container_id} is {c.state}, not created")
            c.state, c.started_at = CONTAINER_RUNNING, self._now()

    def stop_container(self, container_id: str, timeout: float) -> None:
        self._call("stop_container", container_id, timeout)
        with self._lock:
            c = self._container(container_id)
            if c.state == CONTAINER_CREATED:
                c.started_at = c.finished_at = self._now()
                c.state, c.exit_code, c.reason = CONTAINER_EXITED, 128, "StartError"
                return
            if c.state != CONTAINER_RUNNING:
                return
            self._end(c, STOPPED_EXIT_CODE if timeout > 0 else KILLED_EXIT_CODE, "")
        self._notify(c)

    def remove_container(self, container_id: str) -> None:
        self._call("remove_container", container_id)
        with self._lock:
            self._containers.pop(container_id, None)

    def container_status(self, container_id: str) -> ContainerStatus:
        with self._lock:
            return _copy(self._container(container_id))

    def list_containers(self, pod_uid: str | None = None,
                        sandbox_id: str | None = None) -> list[ContainerStatus]:
        with self._lock:
            uids = {s.id: s.metadata.uid for s in self._sandboxes.values()}
            return [_copy(c) for c in self._containers.values()
                    if (pod_uid is None or uids.get(c.pod_sandbox_id) == pod_uid) and
                    (sandbox_id is None or c.pod_sandbox_id == sandbox_id)]

    def exec_sync(self, container_id: str, cmd: list[str], timeout: float) -> ExecResult:
        self._call("exec_sync", container_id, tuple(cmd))
        with self._lock:
            if self._container(container_id).state != CONTAINER_RUNNING:
                raise CRIError(f"container {container_id} is not running")
            return self.exec_results.get(tuple(cmd), ExecResult(0, "", ""))

    def reopen_container_log(self, container_id: str) -> None:
        self._call("reopen_container_log", container_id)
        with self._lock:
            self._container(container_id)

    def subscribe(self, handler: Callable[[ContainerEvent], None]) -> None:
        self._handlers.append(handler)

    # -- images -------------------------------------------------------------------------------

    def pull_image(self, ref: str) -> str:
        self._call("pull_image", ref)
        if ref in self.unpullable:
            raise CRIError(f"{ref}: manifest unknown")
        with self._lock:
            image = self._images.setdefault(ref, _image(ref))
        return image.repo_digests[0]

    def image_status(self, ref: str) -> Image | None:
        with self._lock:
            return self._images.get(ref)

    def remove_image(self, ref: str) -> None:
        self._call("remove_image", ref)
        with self._lock:
            self._images.pop(ref, None)

    def list_images(self) -> list[Image]:
        with self._lock:
            return list(self._images.values())

    # -- the rest -----------------------------------------------------------------------------

    def _call(self, verb: str, *args: object) -> None:
        with self._lock:
            self.calls.append((verb, *args))
            message = self._failures.pop(verb, None)
        if message is not None:
            raise CRIError(message)

    def _new_id(self, kind: str) -> str:
        self._next_id += 1
        return f"{kind}-{self._next_id}"

    def _now(self) -> int:
        # Strictly increasing, as the real runtime's nanoseconds are: newest first is by time.
        self._last_time = max(int(self.clock() * 1e9), self._last_time + 1)
        return self._last_time

    def _sandbox(self, sandbox_id: str) -> PodSandboxStatus:
        if sandbox_id not in self._sandboxes:
            raise NotFound(f"pod sandbox {sandbox_id} not found")
        return self._sandboxes[sandbox_id]

    def _container(self, container_id: str) -> ContainerStatus:
        if container_id not in self._containers:
            raise NotFound(f"container {container_id} not found")
        return self._containers[container_id]

    def _end(self, c: ContainerStatus, exit_code: int, reason: str) -> None:
        c.state, c.exit_code, c.finished_at = CONTAINER_EXITED, exit_code, self._now()
        c.reason = reason or ("Completed" if exit_code == 0 else "Error")

    def _notify(self, c: ContainerStatus) -> None:
        with self._lock:
            sandbox = self._sandboxes.get(c.pod_sandbox_id)
        uid = sandbox.metadata.uid if sandbox else ""
        for handler in self._handlers:
            handler(ContainerEvent(c.id, c.pod_sandbox_id, uid, CONTAINER_EXITED))


def _image(ref: str) -> Image:
    digest = "sha256:" + hashlib.sha256(ref.encode()).hexdigest()
    return Image(id=digest, repo_tags=[ref], repo_digests=[f"{ref.split(':')[0]}@{digest}"],
                 size=1 << 20)


Status = TypeVar("Status", PodSandboxStatus, ContainerStatus)


def _copy(status: Status) -> Status:
    """A snapshot, as a CRI reply is: what the caller holds does not change with the fake."""
    return replace(status, labels=dict(status.labels), annotations=dict(status.annotations))
