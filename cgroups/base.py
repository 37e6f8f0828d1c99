"""The Cgroup interface that both drivers (v1: one directory per hierarchy, v2: unified) implement."""
from __future__ import annotations

import abc
import os
import time

from cgroups.errors import CgroupError
from cgroups.files import remove_tree
from cgroups.validate import validate_resources

FROZEN = "frozen"
THAWED = "thawed"
# signal.SIGKILL without the signal module, whose import pulls in enum (~4 ms on the start path).
SIGKILL = 9

# How long kill-and-wait gives killed processes to leave the cgroup before destroy goes on to
# rmdir (which retries on its own while the kernel still holds the cgroup).
_EXIT_PATIENCE = 5.0


class Cgroup(abc.ABC):
    """One cgroup at `path` (relative to each hierarchy root, e.g. "/pycontainer/<id>").

    Opening one does nothing on disk; create() makes it, destroy() removes it.
    """

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    def validate(self, resources: dict) -> None:
        """validate_resources plus what this host's driver cannot do (e.g. `unified` on v1).

        No writes: call it before create() so that bad input leaves nothing behind.
        """
        validate_resources(resources)
        if resources:
            self._check_host(resources)
            _check_on_host(resources)

    def _check_host(self, resources: dict) -> None:
        """Refuse what validate_resources accepts but this driver cannot apply."""

    @abc.abstractmethod
    def create(self) -> None:
        """mkdir the cgroup in every hierarchy it uses (idempotent)."""

    def apply(self, resources: dict) -> None:
        """Validate, then write an OCI linux.resources object."""
        self.validate(resources)
        if resources:
            self._write_resources(resources)

    @abc.abstractmethod
    def _write_resources(self, resources: dict) -> None:
        """Write a validated, non-empty linux.resources object, in runc's order for the driver."""

    @abc.abstractmethod
    def add_process(self, pid: int) -> None:
        """Move a process (all its threads) into the cgroup."""

    @abc.abstractmethod
    def pids(self) -> list[int]:
        """Every process in the cgroup and its descendants."""

    @abc.abstractmethod
    def stats(self):
        """A cgroups.stats.CgroupStats snapshot."""

    @abc.abstractmethod
    def freeze(self) -> None:
        """Freeze every process; returns once the kernel reports the cgroup frozen."""

    @abc.abstractmethod
    def thaw(self) -> None:
        """Thaw every process; returns once the kernel reports the cgroup thawed."""

    @abc.abstractmethod
    def freezer_state(self) -> str:
        """FROZEN ("frozen") or THAWED ("thawed")."""

    @abc.abstractmethod
    def exists(self) -> bool:
        """Whether any directory of the cgroup exists."""

    @abc.abstractmethod
    def _can_freeze(self) -> bool:
        """Whether this cgroup has a freezer to use."""

    @abc.abstractmethod
    def _directories(self) -> list[str]:
        """The cgroup's directory in every hierarchy, the ones destroy removes."""

    def clone_into_fd(self) -> int | None:
        """A descriptor of this cgroup's cgroup2 directory for clone3(CLONE_INTO_CGROUP), so that
        a new process is born there rather than moved (a move of a whole process waits for an RCU
        grace period, 5-30 ms); None where the host has no cgroup2 hierarchy for it. The new
        process joins the rest itself with add_self(). The caller closes the descriptor."""
        return None

    def add_self(self) -> None:
        """Moves the calling process, which must be single-threaded and born through
        clone_into_fd() where that is not None, into the hierarchies its birth did not place it
        in. Thread by thread, from the thread itself: the kernel moves the current thread alone
        without the threadgroup lock, so no grace period is waited for."""

    def self_join_files(self) -> list[tuple[str, bool]]:
        """What add_self writes "0" to, each file with whether a failure there is an error, for
        a process that joins them by itself without this code (linux/exec_child.c)."""
        return []

    @abc.abstractmethod
    def hierarchy_dirs(self) -> dict[str, str]:
        """What a container's /sys/fs/cgroup shows: the name of each hierarchy's mount point
        (its basename, e.g. "memory", "cpu,cpuacct", "systemd"; "" for a unified host) -> this
        cgroup's directory in that hierarchy."""

    def kill_all(self, sig: int) -> None:
        """Send sig to every process in the cgroup.

        The cgroup is frozen meanwhile (unless it already was), so that no process forks a child
        we would miss, as runc's signalAllProcesses does.
        """
        if not self.exists():
            return
        can_freeze = self._can_freeze()
        was_frozen = not can_freeze or self.freezer_state() == FROZEN
        if not was_frozen:
            self.freeze()
        try:
            _signal_all(self.pids(), sig)
        finally:
            if not was_frozen:
                self.thaw()

    def destroy(self) -> None:
        """Kill every process, then rmdir everywhere, deepest first; an absent cgroup is fine."""
        # An empty cgroup (the usual case: the caller reaped the init of a PID namespace, whose
        # end ended the rest) has nothing to freeze, kill or wait for, and nothing can fork in it.
        if self.exists() and self.pids():
            self._kill_everything()
        for directory in self._directories():
            remove_tree(directory)

    def _kill_everything(self) -> None:
        # Frozen (v1) tasks die only once thawed: freeze against forks, kill, then always thaw.
        can_freeze = self._can_freeze()
        if can_freeze:
            self.freeze()
        _signal_all(self.pids(), SIGKILL)
        if can_freeze:
            self.thaw()
        deadline = time.monotonic() + _EXIT_PATIENCE
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.005)


def _check_on_host(resources: dict) -> None:
    """What both drivers check against this host once the config is well-formed: the block
    devices blockIO names exist, the huge page sizes are the kernel's (each module loaded only
    for a config that uses it)."""
    if resources.get("blockIO"):
        from cgroups import blkio
        blkio.check_devices(resources["blockIO"])
    if resources.get("hugepageLimits"):
        from cgroups import hugetlb
        hugetlb.check_page_sizes(resources["hugepageLimits"])


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass  # exited meanwhile
        except OSError as e:
            raise CgroupError(f"cannot send signal {sig} to process {pid}: {e.strerror}") from None


def wait_for(predicate, what: str, timeout: float = 10.0) -> None:
    """Poll predicate until true; CgroupError naming `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while not predicate():
        if time.monotonic() > deadline:
            raise CgroupError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)

