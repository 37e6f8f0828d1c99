"""A real pycontainer-cri with everything of its own (temp state and socket, CNI config with a
unique bridge and subnet, a cgroup parent for its pods), crictl from the reference binaries,
and a cleanup that leaves nothing behind even when the daemon was killed mid-way: the CRI
tests' daemon, and one of the runtimes the kubelet tests run pykubelet on."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

import cgroups
from netkit import random_subnet, unique
from testlib.processes import kill_all, pids_naming, stop
from testlib.refbin import refbin
from testlib.runtime_leftovers import (release_namespaces, remove_link, remove_runtime_objects,
                                       run_steps)
from testlib.waiting import wait_for

BIN = os.path.dirname(sys.executable)
PYCONTAINER_CRI = os.path.join(BIN, "pycontainer-cri")
IMAGE = "busybox:1.36"


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
            wait_for(lambda: self.proc.poll() is not None or answers(self.socket), 30, 0.05,
                     what="pycontainer-cri listening")
        finally:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pycontainer-cri did not start: {self.log()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        stop(self.proc, sig)

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
        errors = run_steps((
            self.stop, self._stop_pod_pid_holders,
            lambda: remove_runtime_objects(self.state, self.image_root, self.cni_conf,
                                           self.cni_cache),
            lambda: kill_all(self.shim_processes()), lambda: release_namespaces(self.state),
            lambda: cgroups.open_cgroup(self.cgroup_parent).destroy(),
            lambda: remove_link(self.bridge)))
        shutil.rmtree(self.dir, ignore_errors=True)
        if errors:
            raise errors[0]

    def _stop_pod_pid_holders(self) -> None:
        from cri import pod_pid

        sandboxes = os.path.join(self.state, "sandboxes")
        for name in os.listdir(sandboxes) if os.path.isdir(sandboxes) else ():
            pod_pid.stop(os.path.join(sandboxes, name))

    def shim_processes(self) -> list[int]:
        return pids_naming(os.path.join(self.state, "shims"))
