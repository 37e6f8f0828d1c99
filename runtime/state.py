"""Container state on disk: <root>/<id>/state.json, written atomically, and a lock per container.

The status is never stored: it is read off the system each time (is the init alive and the same
process, does exec.fifo still wait for start, is the cgroup frozen), so it is always true, also
after a crash of whoever ran the runtime.
"""
from __future__ import annotations

import errno
import fcntl
import os

from runtime import fastjson
from runtime.errors import ContainerNotFound, PycontainerError

DEFAULT_ROOT = "/run/pycontainer"
STATE_FILE = "state.json"
FIFO = "exec.fifo"
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")
# What each field of state.json must hold; cgroup_hierarchies may also be null (older states).
_FIELD_TYPES = {"id": str, "pid": int, "pid_start": int, "bundle": str, "rootfs": str,
                "created": str, "owner": str, "annotations": dict, "cgroup_path": str,
                "config": dict, "namespace_paths": dict, "cgroup_hierarchies": dict,
                "host_mounts": list}
# Absent from the state of an older pycontainer.
_OPTIONAL = ("cgroup_hierarchies", "host_mounts")


def check_id(container_id: str) -> None:
    if not container_id or container_id in (".", "..") or not set(container_id) <= _ID_CHARS:
        raise PycontainerError(f"invalid container ID {container_id!r}: "
                               "use letters, digits and _ + - . only")


class State:
    """What a container's later commands need to find it and its parts again."""

    __slots__ = ("id", "pid", "pid_start", "bundle", "rootfs", "created", "owner", "annotations",
                 "cgroup_path", "config", "namespace_paths", "cgroup_hierarchies", "host_mounts")

    def __init__(self, id: str, pid: int, pid_start: int, bundle: str, rootfs: str, created: str,
                 owner: str, annotations: dict, cgroup_path: str, config: dict,
                 namespace_paths: dict[str, str], cgroup_hierarchies: dict | None = None,
                 host_mounts: list[str] | None = None) -> None:
        self.id = id
        self.pid = pid
        self.pid_start = pid_start
        self.bundle = bundle
        self.rootfs = rootfs
        self.created = created
        self.owner = owner
        self.annotations = annotations
        self.cgroup_path = cgroup_path
        self.config = config
        self.namespace_paths = namespace_paths
        # Where the cgroup hierarchies were mounted at create (runc keeps its cgroup_paths):
        # every later command would otherwise read /proc/self/mountinfo, which costs more the
        # more containers the host runs. None in the state of an older pycontainer.
        self.cgroup_hierarchies = cgroup_hierarchies
        # Mounts the init made in the caller's mount namespace (a config without a mount
        # namespace), for delete to remove.
        self.host_mounts = host_mounts or []

    def to_dict(self) -> dict:
        # host_mounts only where there are any: most containers have a mount namespace.
        return {name: getattr(self, name) for name in self.__slots__
                if name != "host_mounts" or self.host_mounts}

    @classmethod
    def from_dict(cls, raw: object) -> State:
        """Raises ValueError naming the first field that is missing or of the wrong type."""
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        for name, typ in _FIELD_TYPES.items():
            value = raw.get(name)
            if value is None and name in _OPTIONAL:
                continue
            # bool is an int in Python, not in JSON.
            if not isinstance(value, typ) or isinstance(value, bool):
                raise ValueError(f"{name}: missing or not {typ.__name__}")
        if not all(isinstance(path, str) for path in raw.get("host_mounts") or []):
            raise ValueError("host_mounts: not a list of paths")
        return cls(**{name: raw.get(name) for name in cls.__slots__})


class StateDir:
    """<root>/<id>: state.json, exec.fifo, and a lock held across a command's read-modify-write."""

    __slots__ = ("root", "id", "path", "_lock_fd")

    def __init__(self, root: str, container_id: str) -> None:
        check_id(container_id)
        self.root = root
        self.id = container_id
        self.path = os.path.join(root, container_id)
        self._lock_fd = -1

    def create(self) -> None:
        """Claims the ID; a second create with the same ID fails here, before anything else."""
        os.makedirs(self.root, 0o711, exist_ok=True)
        try:
            os.mkdir(self.path, 0o711)
        except FileExistsError:
            raise PycontainerError(f"container with id {self.id} already exists") from None

    def exists(self) -> bool:
        return os.path.isdir(self.path)

    def lock(self) -> None:
        """Exclusive until the process exits or unlock(): commands on one container serialise."""
        try:
            self._lock_fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ContainerNotFound(self.id) from None
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)

    def unlock(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def save(self, state: State) -> None:
        tmp = os.path.join(self.path, STATE_FILE + ".tmp")
        with open(tmp, "w") as f:
            f.write(fastjson.dumps(state.to_dict()))
        os.rename(tmp, os.path.join(self.path, STATE_FILE))

    def load(self) -> State:
        path = os.path.join(self.path, STATE_FILE)
        try:
            with open(path, "rb") as f:
                return State.from_dict(fastjson.loads(f.read()))
        except FileNotFoundError:
            raise ContainerNotFound(self.id) from None
        except ValueError as e:
            raise PycontainerError(f"container {self.id}: state file {path} is damaged: {e}") from None

    @property
    def fifo(self) -> str:
        return os.path.join(self.path, FIFO)

    def make_fifo(self) -> None:
        # Writable by everyone: the init opens it after switching to the container's user.
        os.mkfifo(self.fifo, 0o622)
        os.chmod(self.fifo, 0o622)

    def remove(self) -> None:
        try:
            for name in os.listdir(self.path):
                os.unlink(os.path.join(self.path, name))
            os.rmdir(self.path)
        except FileNotFoundError:
            pass


def list_ids(root: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(root) if os.path.isdir(os.path.join(root, n)))
    except FileNotFoundError:
        return []


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (clock ticks since boot), or None if the process is gone or a
    zombie: with the PID it identifies a process beyond PID reuse."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def is_alive(pid: int, start: int) -> bool:
    return pid > 0 and process_start_time(pid) == start


def signal_process(pid: int, start: int, sig: int) -> None:
    """Signals the container's process only if it is still the same process."""
    if not is_alive(pid, start):
        raise ProcessLookupError(errno.ESRCH, "process is gone")
    os.kill(pid, sig)
