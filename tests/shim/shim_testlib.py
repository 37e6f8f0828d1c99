"""Helpers of the shim tests: roots, bundles, shims that clean up after themselves, leftovers."""
from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import shim
from runtime.default_spec import default_spec
from testlib.paths import PYCONTAINER, REPO

CGROUP_ROOT = "/sys/fs/cgroup"


def alive(pid: int) -> bool:
    """The process exists and is not a zombie. A thread group's leader shows as a zombie as
    soon as it has exited, while its other threads may still be exiting and holding the
    process's files (a shim's listening socket still accepts then): that counts as alive."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            if f.read().rsplit(b")", 1)[1].split()[0] != b"Z":
                return True
        return len(os.listdir(f"/proc/{pid}/task")) > 1
    except FileNotFoundError:
        return False


def wait_for(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def processes_named(comm: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/comm") as f:
                    if f.read().strip() == comm and alive(int(name)):
                        found.append(int(name))
            except OSError:
                pass
    return found


class Roots:
    """The session's shim root and runtime root."""

    def __init__(self, top: str) -> None:
        self.top = top
        self.shim_root = os.path.join(top, "s")
        self.runtime_root = os.path.join(top, "r")

    def zygote_pids(self) -> list[int]:
        directory = os.path.join(self.shim_root, "@zygote")
        pids = []
        for name in os.listdir(directory) if os.path.isdir(directory) else []:
            if name.endswith(".pid"):
                with open(os.path.join(directory, name)) as f:
                    pids.append(int(f.read()))
        return pids


class Shims:
    """Starts containers under shims for one test and undoes all of it afterwards."""

    def __init__(self, roots: Roots, rootfs: str, tmp: str) -> None:
        self.roots = roots
        self.rootfs = rootfs
        self.tmp = tmp
        self.ids: list[str] = []
        self.pids: list[int] = []

    def new_id(self) -> str:
        container_id = f"t{uuid.uuid4().hex[:10]}"
        self.ids.append(container_id)
        return container_id

    def bundle(self, *args: str, terminal: bool = False, memory_limit: int | None = None,
               pid_namespace: bool = True) -> str:
        path = tempfile.mkdtemp(prefix="bundle", dir=self.tmp)
        config = copy.deepcopy(default_spec(unified_cgroups=False))
        if not pid_namespace:
            config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"]
                                             if n["type"] != "pid"]
        config["root"] = {"path": self.rootfs, "readonly": True}
        config["process"]["terminal"] = terminal
        config["process"]["args"] = list(args)
        if memory_limit:
            # swap = limit: no swap, so the limit is met by the OOM killer
            config["linux"]["resources"]["memory"] = {"limit": memory_limit,
                                                      "swap": memory_limit}
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump(config, f)
        return path

    def config(self, bundle: str, container_id: str | None = None, **fields) -> shim.ShimConfig:
        container_id = container_id or self.new_id()
        fields.setdefault("log_path", self.log_path(container_id))
        fields.setdefault("runtime_root", self.roots.runtime_root)
        return shim.ShimConfig(container_id, bundle, shim_root=self.roots.shim_root, **fields)

    def log_path(self, container_id: str) -> str:
        return os.path.join(self.tmp, "logs", f"{container_id}.log")

    def start(self, *args: str, **fields) -> shim.ShimInfo:
        bundle_fields = {k: fields.pop(k) for k in ("terminal", "memory_limit", "pid_namespace")
                         if k in fields}
        info = shim.start(self.config(self.bundle(*args, **bundle_fields), **fields))
        self.pids.append(info.pid)
        return info

    def connect(self, container_id: str) -> shim.ShimClient:
        return shim.connect(container_id, self.roots.shim_root)

    def runtime(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([PYCONTAINER, "--root", self.roots.runtime_root, *args],
                              capture_output=True, text=True, timeout=30)

    def leftovers(self, container_id: str) -> list[str]:
        """What a container and its shim left on the machine."""
        found = []
        for root, what in ((self.roots.runtime_root, "runtime state"),
                           (self.roots.shim_root, "shim state")):
            if os.path.exists(os.path.join(root, container_id)):
                found.append(f"{what} {root}/{container_id}")
        for hierarchy in os.listdir(CGROUP_ROOT):
            path = os.path.join(CGROUP_ROOT, hierarchy, "pycontainer", container_id)
            if os.path.exists(path):
                found.append(f"cgroup {path}")
        with open("/proc/self/mountinfo") as f:
            found.extend(f"mount {line.split()[4]}" for line in f if container_id in line)
        found.extend(f"process {pid}" for pid in processes_named(f"shim-{container_id}"[:15]))
        return found

    def cleanup(self) -> None:
        for container_id in self.ids:
            try:
                with self.connect(container_id) as c:
                    c.shutdown()
            except (shim.ShimError, OSError):
                pass
        for pid in self.pids:
            if alive(pid) and "shim-" in _comm(pid):
                os.kill(pid, signal.SIGKILL)
        for container_id in self.ids:
            self.runtime("delete", "--force", container_id)
            shutil.rmtree(os.path.join(self.roots.shim_root, container_id), ignore_errors=True)


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def log_records(path: str) -> list[tuple[str, str, str, str]]:
    """(timestamp, stream, tag, content) of each CRI log line."""
    with open(path, "rb") as f:
        lines = f.read().decode().split("\n")
    assert lines[-1] == "", "the log ends with a newline"
    return [tuple(line.split(" ", 3)) for line in lines[:-1]]
