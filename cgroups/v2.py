"""The cgroup v2 driver: one directory in the unified hierarchy.

OCI resources are cgroup v1 values; cgroups.convert turns them into v2 files as runc does.
"""
from __future__ import annotations

import errno
import os

from cgroups import convert
from cgroups.base import FROZEN, THAWED, Cgroup, wait_for
from cgroups.cpuset import refused as cpuset_refused
from cgroups.errors import CgroupError
from cgroups.files import read_int, read_keyed, read_pids, read_text, write_field, write_file

_R = "linux.resources"


class V2Cgroup(Cgroup):
    __slots__ = ("_root", "_dir")

    def __init__(self, path: str, unified: str) -> None:
        super().__init__(path)
        self._root = unified
        self._dir = unified + path

    def _directories(self) -> list[str]:
        return [self._dir]

    def hierarchy_dirs(self) -> dict[str, str]:
        return {"": self._dir}

    def clone_into_fd(self) -> int | None:
        return os.open(self._dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def exists(self) -> bool:
        return os.path.isdir(self._dir)

    # -- create, join, list ---------------------------------------------------------------------

    def create(self) -> None:
        """mkdir every level, enabling the controllers on the way down.

        A v2 controller works in a cgroup only if its parent lists it in cgroup.subtree_control.
        Like runc we enable every controller the parent has; unlike runc we write only the ones
        missing, so an ancestor that is already set up (the usual case) is not written at all.
        """
        current = self._root
        for part in self.path.strip("/").split("/"):
            _enable_controllers(current)
            current = current + "/" + part
            try:
                os.mkdir(current)
            except FileExistsError:
                pass
            except OSError as e:
                raise CgroupError(f"cannot create cgroup {current}: {e.strerror}") from None

    def add_process(self, pid: int) -> None:
        path = self._dir + "/cgroup.procs"
        try:
            write_file(path, str(pid))
        except OSError as e:
            raise CgroupError(f"cannot add process {pid} to {path}: {e.strerror}") from None

    def pids(self) -> list[int]:
        return read_pids(self._dir)

    # -- resources --------------------------------------------------------------------------------

    def _check_host(self, resources: dict) -> None:
        """The io and hugetlb controllers must exist on this host. network (net_cls, net_prio)
        has no cgroup v2 controller: refused rather than ignored as runc does, so that a limit
        asked for is never silently missing."""
        if resources.get("network"):
            raise CgroupError(f"{_R}.network: net_cls and net_prio do not exist on cgroup v2 "
                              "(this host's hierarchy); classify traffic with nftables instead")
        wanted = [(s, c) for s, c in (("blockIO", "io"), ("hugepageLimits", "hugetlb"))
                  if resources.get(s)]
        if not wanted:
            return
        try:
            available = read_text(self._root + "/cgroup.controllers").split()
        except OSError as e:
            raise CgroupError(f"cannot read the controllers of {self._root}: {e.strerror}"
                              ) from None
        for section, controller in wanted:
            if controller not in available:
                raise CgroupError(f"{_R}.{section}: the {controller} controller is not available on"
                                  f" this host (not in {self._root}/cgroup.controllers)")

    def _write_resources(self, resources: dict) -> None:
        cpu = resources.get("cpu") or {}
        # runc's order: pids, memory, io, cpu, devices, cpuset, hugetlb, unified (last, so it can
        # override).
        limit = (resources.get("pids") or {}).get("limit")
        if limit is not None:
            # runc: 0 becomes 1 (systemd cannot say 0), negative is unlimited.
            self._write("pids.max", "max" if limit < 0 else str(max(limit, 1)), f"{_R}.pids.limit")
        if resources.get("memory"):
            self._set_memory(resources["memory"])
        if resources.get("blockIO"):
            self._set_io(resources["blockIO"])
        self._set_cpu(cpu)
        if resources.get("devices"):
            from cgroups.devices_bpf import attach
            attach(self._dir, resources["devices"])
        for key in ("cpus", "mems"):
            if cpu.get(key):
                try:
                    write_file(f"{self._dir}/cpuset.{key}", cpu[key])
                except OSError as e:
                    if e.errno not in (errno.EINVAL, errno.ERANGE):
                        self._raise(e, f"cpuset.{key}", cpu[key], f"{_R}.cpu.{key}")
                    raise cpuset_refused(e, self._dir, key, cpu[key]) from None
        if resources.get("hugepageLimits"):
            from cgroups import hugetlb
            hugetlb.apply(self._dir, resources["hugepageLimits"], "max")
        for key, value in (resources.get("unified") or {}).items():
            self._write(key, value, f"{_R}.unified[{key!r}]")

    def _set_memory(self, memory: dict) -> None:
        f = _R + ".memory"
        limit, swap = memory.get("limit"), memory.get("swap")
        if (limit and limit > 0) or (swap and swap > 0):
            self._refuse_below_usage(limit, swap)
        swap_max = convert.swap_max(swap, limit)
        if swap_max is not None:
            value = convert.limit_value(swap_max)
            try:
                write_file(self._dir + "/memory.swap.max", value)
            except OSError as e:
                # No swap accounting in this kernel: fine as long as nothing asks for a limit.
                if not (e.errno == errno.ENOENT and value in ("max", "0")):
                    self._raise(e, "memory.swap.max", value, f + ".swap")
        if limit:
            self._write("memory.max", convert.limit_value(limit), f + ".limit")
        if memory.get("reservation"):
            self._write("memory.low", convert.limit_value(memory["reservation"]), f + ".reservation")
        # swappiness and disableOOMKiller have no v2 file; runc ignores them on v2 as well.

    def _set_io(self, block_io: dict) -> None:
        from cgroups import blkio
        try:
            bfq_weight = read_text(self._dir + "/io.bfq.weight")
        except FileNotFoundError:
            bfq_weight = None  # no BFQ in this kernel
        except OSError as e:
            raise CgroupError(f"{blkio.F}: cannot read {self._dir}/io.bfq.weight: {e.strerror}"
                              ) from None
        for name, value, field in blkio.v2_writes(block_io, bfq_weight):
            try:
                write_file(f"{self._dir}/{name}", value)
            except OSError as e:
                if e.errno == errno.EOPNOTSUPP and name != "io.max":
                    # A device weight is taken only for a device that BFQ schedules or that
                    # blk-iocost is enabled for (io.cost.qos).
                    raise CgroupError(f"{field}: device {value.split()[0]} takes no weight: it needs"
                                      " the BFQ I/O scheduler or blk-iocost enabled for it (writing"
                                      f" {value!r} to {self._dir}/{name}: {e.strerror})") from None
                self._raise(e, name, value, field)

    def _refuse_below_usage(self, limit: int | None, swap: int | None) -> None:
        """The v2 kernel takes any memory.max and then reclaims or OOM-kills to get under it;
        a limit below what is in use is refused instead, as runc does with checkBeforeUpdate."""
        try:
            usage = read_int(self._dir + "/memory.current") or 0
        except FileNotFoundError:
            return  # memory controller not enabled: _write will say so
        for field, value in (("swap", swap), ("limit", limit)):
            if value and 0 < value <= usage:
                raise CgroupError(f"{_R}.memory.{field}: {value} is not above what the cgroup already"
                                  f" uses ({usage} bytes in {self._dir}/memory.current)")

    def _set_cpu(self, cpu: dict) -> None:
        f = _R + ".cpu"
        if cpu.get("idle") is not None:
            self._write("cpu.idle", str(cpu["idle"]), f + ".idle")
        if cpu.get("shares"):
            self._write("cpu.weight", str(convert.cpu_weight(cpu["shares"])), f + ".shares")
        line = convert.cpu_max(cpu.get("quota"), cpu.get("period"))
        burst = cpu.get("burst")
        # The kernel checks the burst against the quota: write it before cpu.max when it fits the
        # old quota, after when it needs the new one (runc's order).
        late_burst = False
        if burst is not None:
            try:
                write_file(self._dir + "/cpu.max.burst", str(burst))
            except OSError as e:
                if not (e.errno == errno.EINVAL and line):
                    self._raise(e, "cpu.max.burst", str(burst), f + ".burst")
                late_burst = True
        if line:
            self._write("cpu.max", line, f + ".quota" if cpu.get("quota") else f + ".period")
        if late_burst:
            self._write("cpu.max.burst", str(burst), f + ".burst")

    def _write(self, name: str, value: str, field: str) -> None:
        try:
            write_file(f"{self._dir}/{name}", value)
        except OSError as e:
            self._raise(e, name, value, field)

    def _raise(self, error: OSError, name: str, value: str, field: str) -> None:
        path = f"{self._dir}/{name}"
        if error.errno in (errno.ENOENT, errno.EACCES, errno.EPERM):
            controller = name.partition(".")[0]
            try:
                available = read_text(self._dir + "/cgroup.controllers").split()
            except OSError:
                available = None
            if available is not None and controller != "cgroup" and controller not in available:
                raise CgroupError(f"{field}: the {controller} controller is not enabled for"
                                  f" {self._dir}, so it has no {name}") from None
        raise CgroupError(f"{field}: writing {value!r} to {path} failed: {error.strerror}") from None

    # -- freezer ----------------------------------------------------------------------------------

    def _can_freeze(self) -> bool:
        return os.path.exists(self._dir + "/cgroup.freeze")

    def _frozen(self) -> bool:
        return read_keyed(self._dir + "/cgroup.events").get("frozen") == 1

    def freeze(self) -> None:
        write_field(self._dir + "/cgroup.freeze", "1", "freeze")
        wait_for(self._frozen, f"cgroup {self.path} to freeze")

    def thaw(self) -> None:
        write_field(self._dir + "/cgroup.freeze", "0", "thaw")
        wait_for(lambda: not self._frozen(), f"cgroup {self.path} to thaw")

    def freezer_state(self) -> str:
        if not self._can_freeze() or read_text(self._dir + "/cgroup.freeze").strip() != "1":
            return THAWED
        wait_for(self._frozen, f"cgroup {self.path} to freeze")
        return FROZEN

    # -- kill, stats ------------------------------------------------------------------------------

    def _kill_everything(self) -> None:
        # cgroup.kill (Linux 5.14) kills every process at once, frozen or not, with no fork race.
        try:
            write_file(self._dir + "/cgroup.kill", "1")
        except FileNotFoundError:
            super()._kill_everything()
            return
        except OSError as e:
            raise CgroupError(f"cannot kill the processes of {self._dir}: {e.strerror}") from None
        wait_for(lambda: not self.pids(), f"the processes of cgroup {self.path} to exit", timeout=5.0)

    def stats(self):
        from cgroups.stats import read_v2
        return read_v2(self._dir)


def _enable_controllers(directory: str) -> None:
    """Enable in directory's cgroup.subtree_control the controllers it has and lacks there."""
    try:
        available = read_text(directory + "/cgroup.controllers").split()
        enabled = read_text(directory + "/cgroup.subtree_control").split()
    except OSError as e:
        raise CgroupError(f"cannot read the controllers of {directory}: {e.strerror}") from None
    missing = [c for c in available if c not in enabled]
    if not missing:
        return
    path = directory + "/cgroup.subtree_control"
    try:
        write_file(path, " ".join("+" + c for c in missing))
    except OSError:
        # One refused controller fails the whole write: enable the others one by one. Whatever
        # stays off makes apply() say which controller is missing if a resource needs it.
        for controller in missing:
            try:
                write_file(path, "+" + controller)
            except OSError:
                pass
