"""The RuntimeService on runtime + shim + overlay + cni: sandboxes (sandboxes.py), containers
(containers.py) and images (images.py) under one --root-dir, put together with the CRI's
rules for how they touch (a stopped sandbox has no running container; removing a sandbox
removes its containers)."""
from __future__ import annotations

import os
import socket
from collections.abc import Callable

import cgroups
from cni.invoker import CNI

from cri import port_forward
from cri.api import (CONTAINER_RUNNING, SANDBOX_READY, ContainerConfig, ContainerEvent,
                     ContainerStatus, ExecResult, NotFound, PodSandboxConfig, PodSandboxStatus,
                     RuntimeService)
from cri.containers import Containers
from cri.images import Images
from cri.sandboxes import Sandboxes
from cri.streaming.backend import Session, StreamError

# A unix socket path holds at most 107 bytes: <shim root>/<32 hex id>/shim.sock must fit.
_SOCKET_PATH_ROOM = 107 - len("/0123456789abcdef0123456789abcdef/shim.sock")


def check_root_dir(root_dir: str) -> None:
    """ValueError if the shims' sockets would not fit below root_dir."""
    if len(os.path.join(root_dir, "shims").encode()) > _SOCKET_PATH_ROOM:
        raise ValueError(f"--root-dir: {root_dir} is too long for the shims' unix sockets "
                         f"(at most {_SOCKET_PATH_ROOM - len('/shims')} bytes)")


class PycontainerRuntime(RuntimeService):
    def __init__(self, root_dir: str, images: Images, cni_conf_dir: str, cni_bin_dirs: list[str],
                 cni_cache_dir: str) -> None:
        check_root_dir(root_dir)
        self.root_dir = root_dir
        self.shim_root = os.path.join(root_dir, "shims")
        self.runtime_root = os.path.join(root_dir, "runtime")
        self.netns_dir = os.path.join(root_dir, "netns")
        cni = CNI(cni_bin_dirs, cache_dir=cni_cache_dir, in_process=True)
        self.sandboxes = Sandboxes(root_dir, self.netns_dir, cni, cni_conf_dir)
        self.containers = Containers(root_dir, images, self.sandboxes, self.shim_root,
                                     self.runtime_root, cgroups.detect_mode() == "v2")
        self.images = images

    def adopt(self) -> None:
        self.containers.adopt()

    def close(self) -> None:
        self.containers.close()

    def remove_leftovers(self) -> None:
        """What a crash mid-create left: directories without their record, a named netns
        without its sandbox."""
        self.containers.remove_leftovers()
        self.sandboxes.remove_leftovers()

    # -- sandboxes ----------------------------------------------------------------------------

    def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        return self.sandboxes.run(config)

    def stop_pod_sandbox(self, sandbox_id: str) -> None:
        for c in self.containers.list(sandbox_id=sandbox_id):
            if c.state == CONTAINER_RUNNING:
                self.containers.stop(c.id, 0)
        self.sandboxes.stop(sandbox_id)

    def remove_pod_sandbox(self, sandbox_id: str) -> None:
        for c in self.containers.list(sandbox_id=sandbox_id):
            self.containers.remove(c.id)
        self.sandboxes.remove(sandbox_id)

    def pod_sandbox_status(self, sandbox_id: str) -> PodSandboxStatus:
        return self.sandboxes.status(sandbox_id)

    def list_pod_sandboxes(self, pod_uid: str | None = None) -> list[PodSandboxStatus]:
        return self.sandboxes.list(pod_uid)

    # -- containers ---------------------------------------------------------------------------

    def create_container(self, sandbox_id: str, config: ContainerConfig,
                         sandbox_config: PodSandboxConfig) -> str:
        return self.containers.create(sandbox_id, config, sandbox_config)

    def start_container(self, container_id: str) -> None:
        self.containers.start(container_id)

    def stop_container(self, container_id: str, timeout: float) -> None:
        self.containers.stop(container_id, timeout)

    def remove_container(self, container_id: str) -> None:
        self.containers.remove(container_id)

    def container_status(self, container_id: str) -> ContainerStatus:
        return self.containers.status(container_id)

    def list_containers(self, pod_uid: str | None = None,
                        sandbox_id: str | None = None) -> list[ContainerStatus]:
        return self.containers.list(pod_uid, sandbox_id)

    def exec_sync(self, container_id: str, cmd: list[str], timeout: float) -> ExecResult:
        return self.containers.exec_sync(container_id, cmd, timeout)

    def reopen_container_log(self, container_id: str) -> None:
        self.containers.reopen_log(container_id)

    def subscribe(self, handler: Callable[[ContainerEvent], None]) -> None:
        self.containers.subscribe(handler)

    # -- streaming ----------------------------------------------------------------------------

    def exec(self, container_id: str, cmd: list[str], session: Session) -> int:
        return self.containers.exec_stream(container_id, cmd, session)

    def attach(self, container_id: str, session: Session) -> None:
        self.containers.attach(container_id, session)

    def port_forward_dial(self, sandbox_id: str, port: int) -> socket.socket:
        try:
            record = self.sandboxes.get(sandbox_id)
        except NotFound as e:
            raise StreamError(str(e)) from None
        if record["state"] != SANDBOX_READY:
            raise StreamError(f"pod sandbox {sandbox_id} is not ready")
        return port_forward.dial(record["netns"], sandbox_id, port)
