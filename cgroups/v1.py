"""The cgroup v1 driver: one directory per hierarchy (cpu, cpuacct, cpuset, memory, ...).

On a hybrid host the process also joins the (controller-less) cgroup2 hierarchy, and on any v1
host the name=systemd hierarchy, both best effort, as runc's fs manager does: tools that look a
process's cgroup up there (systemd, cgroup-aware tools) then find the container's.
"""
from __future__ import annotations

import errno
import os
import time

from cgroups import mode
from cgroups.base import FROZEN, THAWED, Cgroup, wait_for
from cgroups.cpuset import refused as cpuset_refused
from cgroups.devices import v1_lines
from cgroups.errors import CgroupError
from cgroups.files import read_int, read_pids, read_text, write_field, write_file

_R = "linux.resources"
# The hierarchy whose cgroup.procs lists the members, by preference (every one lists them all).
_MEMBERS_FROM = ("freezer", "pids", "memory", "cpu", "devices")
# Which controller applies each section of linux.resources, and each field of its cpu section.
_SECTION_CONTROLLERS = {"memory": "memory", "pids": "pids", "devices": "devices",
                        "blockIO": "blkio", "hugepageLimits": "hugetlb"}
_NETWORK_CONTROLLERS = {"classID": "net_cls", "priorities": "net_prio"}
_CPU_CONTROLLERS = {"shares": "cpu", "quota": "cpu", "period": "cpu", "burst": "cpu", "idle": "cpu",
                    "cpus": "cpuset", "mems": "cpuset"}


class V1Cgroup(Cgroup):
    __slots__ = ("_dirs", "_best_effort", "_unified")

    def __init__(self, path: str, hierarchies: mode.Hierarchies) -> None:
        super().__init__(path)
        # controller -> this cgroup's directory in its hierarchy
        self._dirs = {c: m + path for c, m in hierarchies.v1.items() if not c.startswith("name=")}
        self._best_effort = [m + path for c, m in hierarchies.v1.items() if c == "name=systemd"]
        # A hybrid host's cgroup2 hierarchy (no controllers): best effort too, as in runc.
        self._unified = hierarchies.unified + path if hierarchies.unified else None
        if self._unified:
            self._best_effort.append(self._unified)

    # -- layout -----------------------------------------------------------------------------

    def _controller_dirs(self) -> list[str]:
        return list(dict.fromkeys(self._dirs.values()))  # co-mounted controllers share one

    def _directories(self) -> list[str]:
        return self._controller_dirs() + self._best_effort

    def hierarchy_dirs(self) -> dict[str, str]:
        dirs = self._directories()
        return {os.path.basename(d[: -len(self.path)]): d for d in dirs}

    def _dir(self, controller: str, field: str) -> str:
        try:
            return self._dirs[controller]
        except KeyError:
            raise CgroupError(f"{field}: the {controller} controller is not available on this host"
                              " (no cgroup v1 hierarchy has it mounted)") from None

    def _members_dir(self) -> str:
        for controller in _MEMBERS_FROM:
            if controller in self._dirs:
                return self._dirs[controller]
        return self._controller_dirs()[0]

    def exists(self) -> bool:
        return any(os.path.isdir(d) for d in self._directories())

    # -- create, join, list -----------------------------------------------------------------

    def create(self) -> None:
        for directory in self._controller_dirs():
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as e:
                raise CgroupError(f"cannot create cgroup {directory}: {e.strerror}") from None
        if "cpuset" in self._dirs:
            self._fill_cpuset(self._dirs["cpuset"])
        for directory in self._best_effort:
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError:
                pass  # runc ignores these too: no limit depends on them

    def _fill_cpuset(self, leaf: str) -> None:
        """A new v1 cpuset starts with empty cpus/mems and takes no process: copy the parent's
        down every level below the hierarchy root, as runc's cpusetEnsureParent does."""
        root = leaf[:len(leaf) - len(self.path)]
        parent = root
        for part in self.path.strip("/").split("/"):
            current = parent + "/" + part
            for name in ("cpuset.cpus", "cpuset.mems"):
                if not read_text(f"{current}/{name}").strip():
                    value = read_text(f"{parent}/{name}").strip()
                    try:
                        write_file(f"{current}/{name}", value)
                    except OSError as e:
                        raise CgroupError(f"cannot copy {name} {value!r} down to {current}:"
                                          f" {e.strerror}") from None
            parent = current

    def add_process(self, pid: int) -> None:
        for directory in self._controller_dirs():
            _join(directory, pid)
        for directory in self._best_effort:
            try:
                _join(directory, pid)
            except CgroupError:
                pass

    def clone_into_fd(self) -> int | None:
        if self._unified is None:
            return None
        try:
            return os.open(self._unified, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return None  # not made (best effort): add_process would skip it too

    def add_self(self) -> None:
        for path, required in self.self_join_files():
            try:
                write_file(path, "0")  # "0": the writing thread itself
            except OSError as e:
                if required:
                    raise CgroupError(f"cannot join {path}: {e.strerror}") from None

    def self_join_files(self) -> list[tuple[str, bool]]:
        return [(d + "/tasks", True) for d in self._controller_dirs()] + \
            [(d + "/tasks", False) for d in self._best_effort if d != self._unified]

    def pids(self) -> list[int]:
        return read_pids(self._members_dir())

    # -- resources ----------------------------------------------------------------------------

    def _check_host(self, resources: dict) -> None:
        unified = resources.get("unified")
        if unified:
            key = next(iter(unified))
            raise CgroupError(f"{_R}.unified[{key!r}]: cgroup v2 files cannot be set on this host"
                              " (its controllers are on cgroup v1)")
        for section, controller in _SECTION_CONTROLLERS.items():
            if resources.get(section):
                self._dir(controller, f"{_R}.{section}")
        for key, value in (resources.get("cpu") or {}).items():
            if value and key in _CPU_CONTROLLERS:
                self._dir(_CPU_CONTROLLERS[key], f"{_R}.cpu.{key}")
        for key, value in (resources.get("network") or {}).items():
            if value and key in _NETWORK_CONTROLLERS:
                self._dir(_NETWORK_CONTROLLERS[key], f"{_R}.network.{key}")

    def _write_resources(self, resources: dict) -> None:
        cpu = resources.get("cpu") or {}
        # runc's order: cpuset, devices, memory, cpu, pids, blkio, hugetlb, net_cls, net_prio.
        self._set_cpuset(cpu)
        if resources.get("devices"):
            directory = self._dir("devices", f"{_R}.devices")
            for i, name, line in v1_lines(resources["devices"]):
                write_field(f"{directory}/{name}", line, f"{_R}.devices[{i}]")
        if resources.get("memory"):
            self._set_memory(resources["memory"])
        self._set_cpu(cpu)
        limit = (resources.get("pids") or {}).get("limit")
        if limit is not None:
            # runc: 0 becomes 1 (systemd cannot say 0), negative is unlimited.
            value = "max" if limit < 0 else str(max(limit, 1))
            write_field(self._dir("pids", f"{_R}.pids.limit") + "/pids.max", value, f"{_R}.pids.limit")
        if resources.get("blockIO"):
            self._set_block_io(resources["blockIO"])
        if resources.get("hugepageLimits"):
            from cgroups import hugetlb
            hugetlb.apply(self._dir("hugetlb", hugetlb.F), resources["hugepageLimits"],
                          "limit_in_bytes")
        if resources.get("network"):
            self._set_network(resources["network"])

    def _set_block_io(self, block_io: dict) -> None:
        from cgroups import blkio
        directory = self._dir("blkio", blkio.F)
        for name, value, field in blkio.v1_writes(block_io, set(os.listdir(directory))):
            write_field(f"{directory}/{name}", value, field)

    def _set_network(self, network: dict) -> None:
        f = _R + ".network"
        if network.get("classID"):
            directory = self._dir("net_cls", f + ".classID")
            write_field(directory + "/net_cls.classid", str(network["classID"]), f + ".classID")
        for i, entry in enumerate(network.get("priorities") or []):
            directory = self._dir("net_prio", f + ".priorities")
            write_field(directory + "/net_prio.ifpriomap", f"{entry['name']} {entry['priority']}",
                        f"{f}.priorities[{i}]")

    def _set_cpuset(self, cpu: dict) -> None:
        for key in ("cpus", "mems"):
            if cpu.get(key):
                directory = self._dir("cpuset", f"{_R}.cpu.{key}")
                try:
                    write_file(f"{directory}/cpuset.{key}", cpu[key])
                except OSError as e:
                    raise cpuset_refused(e, directory, key, cpu[key]) from None

    def _set_memory(self, memory: dict) -> None:
        f = _R + ".memory"
        directory = self._dir("memory", f)
        limit = memory.get("limit") or 0
        swap = memory.get("swap") or 0
        memsw = directory + "/memory.memsw.limit_in_bytes"
        has_memsw = os.path.exists(memsw)
        if limit == -1 and swap == 0 and has_memsw:
            swap = -1  # runc: an unlimited memory limit lifts the memory+swap limit too
        if swap and not has_memsw:
            if swap != -1:
                raise CgroupError(f"{f}.swap: swap accounting is off on this host (no {memsw})")
            swap = 0
        if limit and swap:
            # Raise the memory+swap total before the memory limit when it grows, lower it after
            # when it shrinks: the kernel refuses memsw < memory at every step.
            current = read_int(directory + "/memory.limit_in_bytes")
            if swap == -1 or (current is not None and current < swap):
                self._set_swap(directory, swap)
                self._set_limit(directory, limit)
            else:
                self._set_limit(directory, limit)
                self._set_swap(directory, swap)
        elif limit:
            self._set_limit(directory, limit)
        elif swap:
            self._set_swap(directory, swap)
        reservation = memory.get("reservation")
        if reservation:
            write_field(directory + "/memory.soft_limit_in_bytes", str(reservation), f + ".reservation")
        if memory.get("swappiness") is not None:
            write_field(directory + "/memory.swappiness", str(memory["swappiness"]), f + ".swappiness")
        if memory.get("disableOOMKiller") is not None:
            write_field(directory + "/memory.oom_control", "1" if memory["disableOOMKiller"] else "0",
                        f + ".disableOOMKiller")

    def _set_limit(self, directory: str, limit: int) -> None:
        _write_memory(directory, "memory.limit_in_bytes", limit, f"{_R}.memory.limit",
                      "memory.usage_in_bytes")

    def _set_swap(self, directory: str, swap: int) -> None:
        _write_memory(directory, "memory.memsw.limit_in_bytes", swap, f"{_R}.memory.swap",
                      "memory.memsw.usage_in_bytes")

    def _set_cpu(self, cpu: dict) -> None:
        f = _R + ".cpu"
        shares, quota, period = cpu.get("shares"), cpu.get("quota"), cpu.get("period")
        burst, idle = cpu.get("burst"), cpu.get("idle")
        if not (shares or quota or period or burst is not None or idle is not None):
            return
        directory = self._dir("cpu", f)
        if shares:
            write_field(directory + "/cpu.shares", str(shares), f + ".shares")
            got = read_int(directory + "/cpu.shares")
            if got != shares:  # the kernel clamps instead of refusing
                raise CgroupError(f"{f}.shares: the kernel set {got} instead of {shares}")
        # The kernel checks the new period against the old quota (and the reverse), so a period
        # that fails first (EINVAL) is written again once the quota is in, as runc does.
        pending = []
        if period:
            pending = _write_or_defer(directory + "/cpu.cfs_period_us", str(period), f + ".period",
                                      quota)
        if burst is not None:
            pending += _write_or_defer(directory + "/cpu.cfs_burst_us", str(burst), f + ".burst",
                                       quota)
        if quota:
            write_field(directory + "/cpu.cfs_quota_us", str(quota), f + ".quota")
            for path, value, field in pending:
                write_field(path, value, field)
        if idle is not None:
            write_field(directory + "/cpu.idle", str(idle), f + ".idle")

    # -- freezer --------------------------------------------------------------------------------

    def _can_freeze(self) -> bool:
        return "freezer" in self._dirs and os.path.isdir(self._dirs["freezer"])

    def _freezer_file(self) -> str:
        return self._dir("freezer", "freeze") + "/freezer.state"

    def freeze(self) -> None:
        path = self._freezer_file()
        # A freeze can stall in FREEZING while a task is in an uninterruptible sleep; writing
        # FROZEN again nudges the kernel to retry (runc does the same, with a thaw now and then).
        deadline = time.monotonic() + 10.0
        attempt = 0
        while True:
            write_field(path, "FROZEN", "freeze")
            state = read_text(path).strip()
            if state == "FROZEN":
                return
            if time.monotonic() > deadline:
                write_field(path, "THAWED", "freeze")
                raise CgroupError(f"cannot freeze cgroup {self.path}: still {state} after 10 s")
            attempt += 1
            if attempt % 50 == 0:
                write_field(path, "THAWED", "freeze")
            time.sleep(0.001 if attempt < 100 else 0.01)

    def thaw(self) -> None:
        path = self._freezer_file()
        write_field(path, "THAWED", "thaw")
        wait_for(lambda: read_text(path).strip() == "THAWED", f"cgroup {self.path} to thaw")

    def freezer_state(self) -> str:
        if not self._can_freeze():
            return THAWED
        path = self._freezer_file()
        state = read_text(path).strip()
        if state == "FREEZING":
            wait_for(lambda: read_text(path).strip() != "FREEZING", f"cgroup {self.path} to freeze")
            state = read_text(path).strip()
        # FROZEN because an ancestor is frozen is not our own state (runc: freezer.self_freezing).
        self_freezing = self._dirs["freezer"] + "/freezer.self_freezing"
        if state == "FROZEN" and read_text(self_freezing).strip() == "1":
            return FROZEN
        return THAWED

    # -- stats ----------------------------------------------------------------------------------

    def stats(self):
        from cgroups.stats import read_v1
        return read_v1(self._dirs)


def _join(directory: str, pid: int) -> None:
    path = directory + "/cgroup.procs"
    for attempt in range(5):
        try:
            write_file(path, str(pid))
            return
        except OSError as e:
            # EINVAL: the task is exiting or still being set up; runc retries too.
            if e.errno == errno.EINVAL and attempt < 4:
                time.sleep(0.03)
                continue
            raise CgroupError(f"cannot add process {pid} to {path}: {e.strerror}") from None


def _write_memory(directory: str, name: str, value: int, field: str, usage_name: str) -> None:
    path = f"{directory}/{name}"
    try:
        write_file(path, str(value))
    except OSError as e:
        if e.errno != errno.EBUSY:
            raise CgroupError(f"{field}: writing {value} to {path} failed: {e.strerror}") from None
        # EBUSY: the kernel could not reclaim enough to get under the new limit.
        usage = read_int(f"{directory}/{usage_name}")
        raise CgroupError(f"{field}: {value} is below what the cgroup already uses ({usage} bytes);"
                          f" {path}: {e.strerror}") from None


def _write_or_defer(path: str, value: str, field: str,
                    quota: int | None) -> list[tuple[str, str, str]]:
    """Write, or return the write to redo after the quota when the kernel needs that first."""
    try:
        write_file(path, value)
        return []
    except OSError as e:
        if e.errno == errno.EINVAL and quota:
            return [(path, value, field)]
        if e.errno == errno.ENOENT:
            raise CgroupError(f"{field}: not supported by this kernel (no {path})") from None
        raise CgroupError(f"{field}: writing {value!r} to {path} failed: {e.strerror}") from None
