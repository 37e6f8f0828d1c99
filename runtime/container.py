"""A container found again from its state directory: its true status, its OCI state, signals,
and its destruction (processes, cgroup, poststop hooks, state)."""
from __future__ import annotations

import os
import time

# _signal: the C module `signal` wraps; `signal` itself builds enums at import (3-4 ms).
import _signal

from runtime import state as state_mod
from runtime.errors import ContainerNotFound, StateError
from runtime.log import Log
from runtime.state import State, StateDir

OCI_VERSION = "1.2.0"

CREATING, CREATED, RUNNING, PAUSED, STOPPED = "creating", "created", "running", "paused", "stopped"


class Container:
    __slots__ = ("state_dir", "state", "_cgroup")

    def __init__(self, state_dir: StateDir, state: State) -> None:
        self.state_dir = state_dir
        self.state = state
        self._cgroup = None

    @classmethod
    def load(cls, root: str, container_id: str, lock: bool = True) -> Container:
        state_dir = StateDir(root, container_id)
        if not state_dir.exists():
            raise ContainerNotFound(container_id)
        if lock:
            state_dir.lock()
        return cls(state_dir, state_dir.load())

    @property
    def id(self) -> str:
        return self.state.id

    def cgroup(self):  # -> cgroups.Cgroup; annotated loosely to keep `cgroups` off import time
        if self._cgroup is None:
            import cgroups

            known = self.state.cgroup_hierarchies
            self._cgroup = cgroups.open_cgroup(
                self.state.cgroup_path, cgroups.Hierarchies.from_dict(known) if known else None)
        return self._cgroup

    def init_alive(self) -> bool:
        return state_mod.is_alive(self.state.pid, self.state.pid_start)

    def status(self) -> str:
        if not self.init_alive():
            return STOPPED
        if os.path.exists(self.state_dir.fifo):
            return CREATED
        if self._reads_thawed() or self.cgroup().freezer_state() != "frozen":
            return RUNNING
        return PAUSED

    def _reads_thawed(self) -> bool:
        """Whether the cgroup's freezer file, found through the hierarchies the state recorded,
        says thawed: `state` of a running container without the `cgroups` package (a
        millisecond). Any other answer (frozen, freezing, unreadable, not recorded) is the
        driver's to judge."""
        known = self.state.cgroup_hierarchies
        if not known:
            return False
        if known.get("mode") == "v2":
            path, thawed = f"{known.get('unified')}{self.state.cgroup_path}/cgroup.freeze", b"0"
        else:
            mount = (known.get("v1") or {}).get("freezer")
            if not mount:
                return False
            path, thawed = f"{mount}{self.state.cgroup_path}/freezer.state", b"THAWED"
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            return os.read(fd, 64).strip() == thawed
        except OSError:
            return False
        finally:
            os.close(fd)

    def oci_state(self, status: str | None = None) -> dict:
        """The OCI state (runtime spec "State"), plus runc's rootfs/created/owner."""
        status = status or self.status()
        result = {
            "ociVersion": OCI_VERSION,
            "id": self.state.id,
            "pid": self.state.pid if status != STOPPED else 0,
            "status": status,
            "bundle": self.state.bundle,
            "rootfs": self.state.rootfs,
            "created": self.state.created,
            "owner": self.state.owner,
        }
        if self.state.annotations:
            result["annotations"] = self.state.annotations
        return result

    def signal(self, sig: int, all_processes: bool = False) -> None:
        # Stopped is all that refuses a signal, and the init alone tells it: the cgroup (whose
        # package is a millisecond of every kill) only for --all.
        if not self.init_alive():
            raise StateError("container not running")
        if all_processes:
            self.cgroup().kill_all(sig)
        else:
            state_mod.signal_process(self.state.pid, self.state.pid_start, sig)

    def destroy(self, log: Log) -> None:
        """Kills whatever still runs in the container, removes its cgroup, runs the poststop
        hooks and forgets it."""
        alive = self.init_alive()
        if alive:
            os.kill(self.state.pid, _signal.SIGKILL)
        if alive or not self._removed_empty_cgroup():
            cgroup = self.cgroup()
            if cgroup.exists():
                # Frozen tasks only die once thawed; destroy() kills and waits for the rest.
                if cgroup.freezer_state() == "frozen":
                    cgroup.thaw()
                cgroup.destroy()
        self._wait_init_gone()
        if self.state.host_mounts:
            from linux.syscalls import Syscalls
            from runtime.init import host_mounts

            host_mounts.remove(Syscalls(), self.state.host_mounts)
        if _has_hooks(self.state.config, "poststop"):
            from runtime import config as config_mod, hooks

            poststop = config_mod.parse_hooks(self.state.config)["poststop"]
            hooks.run_warning_only("poststop", poststop, self.oci_state(STOPPED), log)
        self.state_dir.remove()

    def _removed_empty_cgroup(self) -> bool:
        """The usual delete, of a container whose init is gone: one rmdir in each hierarchy the
        state recorded, without the `cgroups` package (2 ms of the verb). False when that is
        not the whole job (members or child cgroups left: the kernel refuses the rmdir; no
        hierarchies recorded), which is then the driver's: it kills, walks and waits, and
        finds gone what was removed here."""
        known = self.state.cgroup_hierarchies
        if not known:
            return False
        path = self.state.cgroup_path
        if known.get("mode") == "v2":
            dirs = [known["unified"] + path]
        else:
            dirs = [mount + path for mount in (known.get("v1") or {}).values()]
            if known.get("unified"):
                dirs.append(known["unified"] + path)  # a hybrid host's, joined best effort
        for directory in dict.fromkeys(dirs):  # co-mounted controllers share one
            try:
                os.rmdir(directory)
            except FileNotFoundError:
                pass
            except OSError:
                return False
        return True

    def _wait_init_gone(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.init_alive():
            if time.monotonic() > deadline:
                raise StateError(f"container {self.id}: init {self.state.pid} does not die")
            time.sleep(0.005)


def start(container: Container, log: Log) -> None:
    """Releases the init waiting on exec.fifo (the OCI `start` operation), waits until it has
    exec'd the user's process, then runs the poststart hooks."""
    import select

    status = container.status()
    if status != CREATED:
        raise StateError(f"cannot start a container that is {status}" if status != STOPPED
                         else "cannot start a container that has stopped")
    fifo = os.open(container.state_dir.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        # The init is blocked opening the fifo for writing; our open releases it and it writes
        # one byte. Poll so that an init that died meanwhile is noticed instead of waited for.
        while not select.select([fifo], [], [], 0.1)[0]:
            if not container.init_alive():
                raise StateError("container init died before start")
        if os.read(fifo, 1) != b"0":
            raise StateError("container init died before start")
        # Released: no longer "created" for anyone who looks from here on.
        os.unlink(container.state_dir.fifo)
        # Its end of the fifo closes at the user's execve (or at its death), after the exec
        # stub's line if that execve failed: as runc's, start returns once the container's
        # process is the user's, so that a `state` or `kill` right after finds the user's
        # process and not the init still on its way to it.
        os.set_blocking(fifo, True)
        report = b""
        while chunk := os.read(fifo, 4096):
            report += chunk
    finally:
        os.close(fifo)
    if report:
        from runtime import sync

        # The stub's one line, "error exec PATH: REASON": the container has stopped.
        raise StateError(report.decode(errors="replace").strip().removeprefix(f"{sync.ERROR} "))
    if _has_hooks(container.state.config, "poststart"):
        from runtime import config as config_mod, hooks

        poststart = config_mod.parse_hooks(container.state.config)["poststart"]
        hooks.run_warning_only("poststart", poststart, container.oci_state(RUNNING), log)


def _has_hooks(config: dict, kind: str) -> bool:
    """Whether the config (checked at create) has hooks of this kind: most have none, and
    without them start and delete need not load the config parser."""
    hooks = config.get("hooks")
    return isinstance(hooks, dict) and bool(hooks.get(kind))
