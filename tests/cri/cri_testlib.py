"""Helpers of the pycontainer-cri tests: a real daemon with everything of its own (temp state and
socket, CNI config with a unique bridge and subnet, a cgroup parent for its pods), crictl and
critest unpacked into a cache outside the checkout, and a cleanup that leaves nothing behind
even when the daemon was killed mid-way."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import cgroups
from netkit import random_subnet, unique
from netns import links, named, rtnl

BIN = os.path.dirname(sys.executable)
PYCONTAINER_CRI = os.path.join(BIN, "pycontainer-cri")
REFBIN = "/work/shared/refbin"
CACHE = "/var/cache/pycontainer-tests/refbin"
IMAGE = "busybox:1.36"
IMAGE_FULL = "docker.io/library/busybox:1.36"


def refbin(name: str) -> str:
    """The reference binary `name` (crictl, critest), unpacked once into the cache."""
    path = os.path.join(CACHE, name)
    if not os.access(path, os.X_OK):
        os.makedirs(CACHE, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as out:
            subprocess.run(["xz", "-dc", os.path.join(REFBIN, f"{name}.xz")], stdout=out,
                           check=True)
        os.chmod(tmp, 0o755)
        os.rename(tmp, path)
    return path


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what() if callable(what) else what} not met within "
                                 f"{timeout} s")
        time.sleep(interval)


def answers(path: str) -> bool:
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(path)
            return True
        except OSError:
            return False


class CriDaemon:
    """One pycontainer-cri with everything of its own; cleanup() removes all of it."""

    def __init__(self, image_root: str, extra_args: tuple[str, ...] = ()) -> None:
        # Short: the shims' unix socket paths live below it.
        self.dir = tempfile.mkdtemp(prefix="pcri-")
        self.state = os.path.join(self.dir, "state")
        self.socket = os.path.join(self.dir, "cri.sock")
        self.endpoint = f"unix://{self.socket}"
        self.cni_conf = os.path.join(self.dir, "net.d")
        self.cni_cache = os.path.join(self.dir, "cni-cache")
        self.logs = os.path.join(self.dir, "pods")
        self.image_root = image_root
        self.bridge = unique("pcri")
        self.network = unique("pcri")
        self.subnet = random_subnet()
        self.cgroup_parent = f"/pycontainer/{unique('pcri')}"
        self.output = os.path.join(self.dir, "daemon.log")
        self.extra_args = extra_args
        self.proc: subprocess.Popen | None = None
        os.makedirs(self.cni_conf)
        with open(os.path.join(self.cni_conf, "10-pcri.conflist"), "w") as f:
            json.dump({"cniVersion": "1.0.0", "name": self.network, "plugins": [
                {"type": "pycni-bridge", "bridge": self.bridge, "isGateway": True,
                 "ipam": {"type": "pycni-host-local", "ranges": [[{"subnet": self.subnet}]],
                          "dataDir": os.path.join(self.dir, "ipam")}},
                {"type": "pycni-portmap", "capabilities": {"portMappings": True}}]}, f)

    def argv(self) -> list[str]:
        return [PYCONTAINER_CRI, "--listen", self.endpoint, "--root", self.image_root,
                "--state", self.state, "--cni-conf-dir", self.cni_conf,
                "--cni-bin-dir", f"{BIN},/usr/lib/cni", "--cni-cache-dir", self.cni_cache,
                *self.extra_args]

    def start(self) -> None:
        with open(self.output, "ab") as log:
            self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: self.proc.poll() is not None or answers(self.socket), 30,
                     what="pycontainer-cri listening")
        finally:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pycontainer-cri did not start: {self.log()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        with open(self.output, errors="replace") as f:
            return f.read()

    def crictl(self, *args: str, timeout: float = 60, check: bool = True,
               input: str | None = None) -> subprocess.CompletedProcess:
        p = subprocess.run([refbin("crictl"), "--runtime-endpoint", self.endpoint,
                            "--image-endpoint", self.endpoint, "--timeout", "30s", *args],
                           capture_output=True, text=True, timeout=timeout, input=input)
        if check and p.returncode != 0:
            raise AssertionError(f"crictl {' '.join(args)}: exit {p.returncode}: "
                                 f"{p.stderr.strip()}")
        return p

    def pod_config(self, path: str, name: str = "pod", **extra: object) -> str:
        """A sandbox config file for crictl runp; its cgroup below this daemon's parent."""
        config = {"metadata": {"name": name, "namespace": "pcri", "uid": unique("uid"),
                               "attempt": 0},
                  "log_directory": os.path.join(self.logs, name),
                  "linux": {"cgroup_parent": self.cgroup_parent}, **extra}
        with open(path, "w") as f:
            json.dump(config, f)
        return path

    def container_config(self, path: str, name: str = "box", command: list[str] | None = None,
                         **extra: object) -> str:
        config = {"metadata": {"name": name}, "image": {"image": IMAGE},
                  "command": command or ["sleep", "3600"], "log_path": f"{name}.log",
                  "linux": {}, **extra}
        with open(path, "w") as f:
            json.dump(config, f)
        return path

    def cleanup(self) -> None:
        """Stops the daemon and removes what it made, also what a killed one left; every step
        runs even if an earlier one failed (the first error is raised at the end)."""
        errors: list[BaseException] = []
        for step in (self.stop, self._stop_pod_pid_holders, self._remove_runtime_objects,
                     self._kill_shims,
                     self._release_mounts,
                     lambda: cgroups.open_cgroup(self.cgroup_parent).destroy(),
                     self._remove_bridge):
            try:
                step()
            except Exception as e:  # noqa: BLE001 - the next steps must run all the same
                errors.append(e)
        shutil.rmtree(self.dir, ignore_errors=True)
        if errors:
            raise errors[0]

    def _stop_pod_pid_holders(self) -> None:
        from cri import pod_pid

        sandboxes = os.path.join(self.state, "sandboxes")
        for name in os.listdir(sandboxes) if os.path.isdir(sandboxes) else ():
            pod_pid.stop(os.path.join(sandboxes, name))

    def _remove_runtime_objects(self) -> None:
        if not os.path.isdir(self.state):
            return
        from cri.images import Images
        from cri.service import PycontainerRuntime

        runtime = PycontainerRuntime(self.state, Images(self.image_root), self.cni_conf,
                                     [BIN, "/usr/lib/cni"], self.cni_cache)
        try:
            runtime.adopt()
            for c in runtime.list_containers():
                runtime.remove_container(c.id)
            for s in runtime.list_pod_sandboxes():
                runtime.remove_pod_sandbox(s.id)
        finally:
            runtime.close()

    def shim_processes(self) -> list[int]:
        found = []
        needle = os.path.join(self.state, "shims").encode()
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if needle in f.read():
                        found.append(int(pid))
            except OSError:
                continue
        return found

    def _kill_shims(self) -> None:
        for pid in self.shim_processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _release_mounts(self) -> None:
        from cri import pinns

        netns_dir = os.path.join(self.state, "netns")
        for name in named.list_names(netns_dir):
            named.delete(name, netns_dir)
        if os.path.isdir(netns_dir):
            named.release_dir(netns_dir)
        if os.path.isdir(os.path.join(self.state, "sandboxes")):
            pinns.release_shared_dir(os.path.join(self.state, "sandboxes"))

    def _remove_bridge(self) -> None:
        with rtnl.RtnlSocket() as host:
            link = links.get_link(host, self.bridge)
            if link is not None:
                links.delete_link(host, link.index)
