"""The CRI runtime and image services the kubelet drives: the CRI's verbs and messages
(k8s.io/cri-api RuntimeService and ImageService) as Python calls and dataclasses. The kubelet
knows only this interface; service.py implements it on runtime + shim + overlay + cni, fake.py
in memory for the kubelet's unit tests.

Times are nanoseconds since the epoch (0: not yet), as in the CRI."""
from __future__ import annotations

import abc
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from cri.streaming.backend import Session, StreamError

SANDBOX_READY = "SANDBOX_READY"
SANDBOX_NOTREADY = "SANDBOX_NOTREADY"

CONTAINER_CREATED = "CONTAINER_CREATED"
CONTAINER_RUNNING = "CONTAINER_RUNNING"
CONTAINER_EXITED = "CONTAINER_EXITED"
CONTAINER_UNKNOWN = "CONTAINER_UNKNOWN"


class CRIError(Exception):
    """A runtime call failed; the message is one line fit for a pod's status or event."""


class NotFound(CRIError):
    pass


class ImageNotFound(CRIError):
    pass


@dataclass
class PodSandboxMetadata:
    name: str
    uid: str
    namespace: str
    attempt: int = 0


@dataclass
class PortMapping:
    container_port: int
    host_port: int
    protocol: str = "TCP"
    host_ip: str = ""


@dataclass
class PodSandboxConfig:
    metadata: PodSandboxMetadata
    hostname: str = ""
    log_directory: str = ""            # /var/log/pods/<ns>_<name>_<uid>
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    host_network: bool = False
    host_ipc: bool = False
    host_pid: bool = False
    cgroup_parent: str = ""            # the pod's cgroup; the containers' cgroups go below it
    port_mappings: list[PortMapping] = field(default_factory=list)
    # The pod's namespaced sysctls and whether any of its containers is privileged: a CRI
    # runtime applies them to the sandbox (containerd to its pause container).
    sysctls: dict[str, str] = field(default_factory=dict)
    privileged: bool = False


@dataclass
class PodSandboxStatus:
    id: str
    metadata: PodSandboxMetadata
    state: str
    created_at: int
    ips: list[str] = field(default_factory=list)
    netns_path: str = ""               # "" for hostNetwork
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    host_network: bool = False
    log_directory: str = ""
    cgroup_parent: str = ""


@dataclass
class Mount:
    container_path: str
    host_path: str
    readonly: bool = False
    propagation: str = "private"       # private | rslave | rshared


@dataclass
class SecurityProfile:
    """The CRI's seccomp SecurityProfile; a container without one is Unconfined."""
    profile_type: str                  # RuntimeDefault | Localhost
    localhost_ref: str = ""            # Localhost: the profile file's absolute path


@dataclass
class LinuxContainerConfig:
    """linux.resources in OCI form (issue 9 fills it from requests/limits) and the security
    context fields the runtime applies."""
    resources: dict = field(default_factory=dict)
    oom_score_adj: int | None = None
    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_username: str = ""          # a name in the image's /etc/passwd, as the image's User
    supplemental_groups: list[int] = field(default_factory=list)
    readonly_rootfs: bool = False
    no_new_privs: bool = False
    add_capabilities: list[str] = field(default_factory=list)
    drop_capabilities: list[str] = field(default_factory=list)
    privileged: bool = False
    sysctls: dict[str, str] = field(default_factory=dict)      # the pod's, namespaced ones
    masked_paths: list[str] = field(default_factory=list)      # from procMount
    readonly_paths: list[str] = field(default_factory=list)
    seccomp: SecurityProfile | None = None
    # A container's ID whose PID namespace this one joins (the CRI's NamespaceMode TARGET, for
    # an ephemeral container with a targetContainerName); "" for one of its own.
    pid_target: str = ""
    # A PID namespace to join by path: the pod's, where one process holds it for all of its
    # containers (the CRI's NamespaceMode POD, cri.pod_pid); "" for one of its own.
    pid_namespace: str = ""


@dataclass
class ContainerMetadata:
    name: str
    attempt: int = 0


@dataclass
class ContainerConfig:
    metadata: ContainerMetadata
    image: str
    command: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    working_dir: str = ""
    envs: list[tuple[str, str]] = field(default_factory=list)
    mounts: list[Mount] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    log_path: str = ""                 # relative to the sandbox's log_directory
    linux: LinuxContainerConfig = field(default_factory=LinuxContainerConfig)
    stdin: bool = False                # keep a stdin open for attach
    stdin_once: bool = False           # ... and close it when the first attach closes it
    tty: bool = False                  # a terminal (process.terminal)


@dataclass
class ContainerStatus:
    id: str
    pod_sandbox_id: str
    metadata: ContainerMetadata
    state: str
    created_at: int = 0
    started_at: int = 0
    finished_at: int = 0
    exit_code: int = 0
    image: str = ""                    # the image as the pod named it
    image_ref: str = ""                # what ran: name@digest
    reason: str = ""                   # Completed, Error, OOMKilled, StartError
    message: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    log_path: str = ""                 # absolute


@dataclass
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool = False


@dataclass
class Image:
    id: str                            # the config digest
    repo_tags: list[str]
    repo_digests: list[str]
    size: int
    uid: int | None = None             # the image's User when numeric (CRI ImageStatus)
    username: str = ""                 # the image's User when a name


@dataclass
class ContainerEvent:
    """What the runtime tells the kubelet unasked (CRI GetContainerEvents): a container
    stopped, so its pod needs a sync."""
    container_id: str
    pod_sandbox_id: str
    pod_uid: str
    type: str                          # CONTAINER_EXITED


class RuntimeService(abc.ABC):
    # -- sandboxes ----------------------------------------------------------------------------
    @abc.abstractmethod
    def run_pod_sandbox(self, config: PodSandboxConfig) -> str:
        """Creates and starts the sandbox (namespaces, network); its ID."""

    @abc.abstractmethod
    def stop_pod_sandbox(self, sandbox_id: str) -> None:
        """Stops every container of it and tears its network down; repeatable."""

    @abc.abstractmethod
    def remove_pod_sandbox(self, sandbox_id: str) -> None:
        """Stops it if needed and removes it and its containers; no error if absent."""

    @abc.abstractmethod
    def pod_sandbox_status(self, sandbox_id: str) -> PodSandboxStatus: ...

    @abc.abstractmethod
    def list_pod_sandboxes(self, pod_uid: str | None = None) -> list[PodSandboxStatus]: ...

    # -- containers ---------------------------------------------------------------------------
    @abc.abstractmethod
    def create_container(self, sandbox_id: str, config: ContainerConfig,
                         sandbox_config: PodSandboxConfig) -> str: ...

    @abc.abstractmethod
    def start_container(self, container_id: str) -> None: ...

    @abc.abstractmethod
    def stop_container(self, container_id: str, timeout: float) -> None:
        """The stop signal, then SIGKILL after `timeout` seconds; returns once it exited."""

    @abc.abstractmethod
    def remove_container(self, container_id: str) -> None:
        """Kills it if it runs and removes it; no error if absent."""

    @abc.abstractmethod
    def container_status(self, container_id: str) -> ContainerStatus: ...

    @abc.abstractmethod
    def list_containers(self, pod_uid: str | None = None,
                        sandbox_id: str | None = None) -> list[ContainerStatus]: ...

    @abc.abstractmethod
    def exec_sync(self, container_id: str, cmd: list[str], timeout: float) -> ExecResult: ...

    @abc.abstractmethod
    def reopen_container_log(self, container_id: str) -> None: ...

    # -- streaming (what the kubelet's /exec, /attach and /portForward run on) ----------------
    # Not abstract: a runtime without them refuses, as a CRI without a streaming server would.

    def exec(self, container_id: str, cmd: list[str], session: Session) -> int:
        """Runs cmd in the running container with the session's streams; its exit code (128+N
        when signal N ended it). StreamError when it cannot run."""
        raise StreamError("exec is not supported by this runtime")

    def attach(self, container_id: str, session: Session) -> None:
        """Joins the running container's stdio until it exits or the client goes."""
        raise StreamError("attach is not supported by this runtime")

    def port_forward_dial(self, sandbox_id: str, port: int) -> socket.socket:
        """A connection to localhost:port inside the sandbox's network namespace."""
        raise StreamError("port forwarding is not supported by this runtime")

    @abc.abstractmethod
    def subscribe(self, handler: Callable[[ContainerEvent], None]) -> None:
        """handler is called (from a runtime thread) for every container event."""


class ImageService(abc.ABC):
    @abc.abstractmethod
    def pull_image(self, ref: str) -> str:
        """Pulls ref into the store; returns the image's ref (name@digest)."""

    @abc.abstractmethod
    def image_status(self, ref: str) -> Image | None:
        """The image if the store has it, else None."""

    @abc.abstractmethod
    def remove_image(self, ref: str) -> None: ...

    @abc.abstractmethod
    def list_images(self) -> list[Image]: ...
