"""The upstream kubelet (../shared/refbin/kubelet.xz, v1.35) as a node of an API server, on
pycontainer-cri through --container-runtime-endpoint, with everything of its own: a private root
dir and pod log dir, free ports, its cgroup root below the pycontainer parent (cgroupfs driver,
this host's cgroup v1 hierarchies), swap allowed.

What the kubelet would change on the host is kept from it: it runs in a mount namespace of its
own (propagation unchanged, so the runtime sees what it mounts for pods) in which only /proc is
made private and the three kernel tunables it insists on (vm.overcommit_memory,
kernel.panic, kernel.panic_on_oops) are files of this test; its PATH has no iptables (it
lives in /usr/sbin here), so that it makes none of its chains (KUBE-IPTABLES-HINT, the
canaries, KUBE-FIREWALL with its DROP rule for localnet) on the host: cleanup() checks that
none appeared.

The node's address (the kubelet refuses a loopback one) is in 198.18.0.0/15 on a link of the
test (a bridge without ports: this kernel has no dummy links); the kubelet serves on it.

stop() ends the kubelet; once the runtime has removed the pods' sandboxes, cleanup() removes
what is left: mounts below its directory, the cgroup root, the link, the directories it makes
at fixed places (FIXED_DIRS)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile

import cgroups
from netkit import random_subnet, unique
from testlib.processes import free_port, stop
from testlib.refbin import refbin
from testlib.runtime_leftovers import run_steps, unmount_below

TUNABLES = {"vm/overcommit_memory": "1", "kernel/panic": "10", "kernel/panic_on_oops": "1"}
# Without /usr/sbin and /sbin: the kubelet finds no iptables and says so once.
KUBELET_PATH = "/usr/local/bin:/usr/bin:/bin"
# What it makes at fixed places whatever --root-dir and podLogsDir say (the device manager's
# socket directory, the containers' log symlinks): removed after it where they were not there
# before it.
FIXED_DIRS = ("/var/lib/kubelet/device-plugins", "/var/lib/kubelet", "/var/log/containers")
IPTABLES_SAVE = ("iptables-save", "ip6tables-save")


def _kube_rules() -> set[str]:
    """The host's iptables lines that name a KUBE- chain."""
    found = set()
    for tool in IPTABLES_SAVE:
        out = subprocess.run([tool], capture_output=True, text=True).stdout
        found |= {f"{tool}: {line}" for line in out.splitlines() if "KUBE-" in line}
    return found


class UpstreamKubelet:
    def __init__(self, node: str, kubeconfig: str, client_ca: str, endpoint: str) -> None:
        self.node = node
        self.dir = tempfile.mkdtemp(prefix="uk-")
        self.root = os.path.join(self.dir, "root")
        self.pod_logs = os.path.join(self.dir, "pods")
        self.config = os.path.join(self.dir, "kubelet.yaml")
        self.output = os.path.join(self.dir, "kubelet.log")
        self.cgroup_root = f"/pycontainer/{unique('uk')}"
        self.link = unique("ukn")
        self.node_ip = random_subnet().replace(".0/24", ".1")
        self.port = free_port()
        self.kubeconfig = kubeconfig
        self.proc: subprocess.Popen | None = None
        self._rules_before = _kube_rules()
        self._fixed_dirs_before = {d for d in FIXED_DIRS if os.path.exists(d)}
        tunables = os.path.join(self.dir, "sys")
        os.makedirs(tunables)
        for name in TUNABLES:
            with open(os.path.join(tunables, name.replace("/", ".")), "w") as f:
                f.write(_read(f"/proc/sys/{name}"))
        with open(self.config, "w") as f:
            json.dump({
                "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
                "containerRuntimeEndpoint": endpoint, "cgroupDriver": "cgroupfs",
                "cgroupRoot": self.cgroup_root, "failSwapOn": False,
                "address": self.node_ip, "port": self.port, "readOnlyPort": 0,
                "healthzPort": free_port(), "healthzBindAddress": "127.0.0.1",
                "podLogsDir": self.pod_logs, "oomScoreAdj": 0,
                "authentication": {"anonymous": {"enabled": False},
                                   "webhook": {"enabled": True},
                                   "x509": {"clientCAFile": client_ca}},
                "authorization": {"mode": "Webhook"},
                "resolvConf": "/etc/resolv.conf", "syncFrequency": "10s",
                "fileCheckFrequency": "10s", "nodeStatusUpdateFrequency": "5s",
                "serializeImagePulls": True, "localStorageCapacityIsolation": False,
                # no evictions for this host's disk or memory while the test runs
                "evictionHard": {"memory.available": "0%", "nodefs.available": "0%",
                                 "imagefs.available": "0%", "nodefs.inodesFree": "0%"},
                "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
                "containerLogMaxSize": "10Mi", "enableServer": True,
            }, f)

    def argv(self) -> list[str]:
        binds = " && ".join(
            f"mount --bind {self.dir}/sys/{name.replace('/', '.')} /proc/sys/{name}"
            for name in TUNABLES)
        kubelet = " ".join([refbin("kubelet"), "--config", self.config, "--kubeconfig",
                            self.kubeconfig, "--root-dir", self.root, "--cert-dir",
                            os.path.join(self.dir, "pki"), "--hostname-override",
                            self.node, "--node-ip", self.node_ip, "--v", "2"])
        return ["unshare", "--mount", "--propagation", "unchanged", "sh", "-c",
                f"mount --make-rprivate /proc && {binds} && exec {kubelet}"]

    def start(self) -> None:
        subprocess.run(["ip", "link", "add", self.link, "type", "bridge"], check=True)
        subprocess.run(["ip", "addr", "add", f"{self.node_ip}/32", "dev", self.link], check=True)
        subprocess.run(["ip", "link", "set", self.link, "up"], check=True)
        cgroups.open_cgroup(self.cgroup_root).create()
        with open(self.output, "ab") as log:
            self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=subprocess.STDOUT,
                                         env={**os.environ, "PATH": KUBELET_PATH})

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        with open(self.output, errors="replace") as f:
            return f.read()

    def stop(self) -> None:
        stop(self.proc)

    def cleanup(self) -> None:
        """After stop() and the runtime's removal of the pods: what the kubelet left."""
        errors = run_steps((self.stop, lambda: unmount_below(self.dir),
                            lambda: cgroups.open_cgroup(self.cgroup_root).destroy(),
                            self._remove_link, self._remove_fixed_dirs, self._check_rules))
        shutil.rmtree(self.dir, ignore_errors=True)
        if errors:
            raise errors[0]

    def _remove_fixed_dirs(self) -> None:
        for made in (d for d in FIXED_DIRS if d not in self._fixed_dirs_before):
            shutil.rmtree(made, ignore_errors=True)

    def _remove_link(self) -> None:
        subprocess.run(["ip", "link", "del", self.link], capture_output=True)

    def _check_rules(self) -> None:
        made = _kube_rules() - self._rules_before
        if made:
            raise AssertionError(f"the kubelet left iptables rules: {sorted(made)}")


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()
