"""A private containerd (Debian's 1.6, with its CRI plugin) beside pycontainer-cri, for critest
and the benchmark to compare the two: its own root, state, socket and config, a CNI network of
the reference plugins (/usr/lib/cni) on a unique bridge in 198.18.0.0/15, images imported with
`ctr images import` and a loopback registry as an HTTP mirror of itself. No portmap plugin: its
iptables chains would outlive the test on the host.

cleanup() removes every pod through CRI, stops containerd and then removes whatever it left:
shims, mounts below its root and state, the bridge, its cgroups."""
from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import tempfile

from netkit import random_subnet, unique
from testlib.cri_daemon import answers
from testlib.critest_images import SANDBOX_IMAGE
from testlib.processes import pids_naming, stop
from testlib.refbin import refbin
from testlib.runtime_leftovers import remove_link, run_steps, unmount_below
from testlib.waiting import wait_for


class Containerd:
    def __init__(self, insecure_registries: tuple[str, ...] = ()) -> None:
        self.dir = tempfile.mkdtemp(prefix="pctd-")
        self.root = os.path.join(self.dir, "root")
        self.state = os.path.join(self.dir, "state")
        self.socket = os.path.join(self.dir, "containerd.sock")
        self.endpoint = f"unix://{self.socket}"
        self.cni_conf = os.path.join(self.dir, "net.d")
        self.bridge = unique("pctd")
        self.subnet = random_subnet()
        self.config = os.path.join(self.dir, "config.toml")
        self.output = os.path.join(self.dir, "containerd.log")
        self.proc: subprocess.Popen | None = None
        # containerd puts the containers of pods without a cgroup parent below /k8s.io.
        self.cgroup_dirs_before = set(glob.glob("/sys/fs/cgroup/*/k8s.io")
                                      + glob.glob("/sys/fs/cgroup/k8s.io"))
        os.makedirs(self.cni_conf)
        with open(os.path.join(self.cni_conf, "10-pctd.conflist"), "w") as f:
            json.dump({"cniVersion": "1.0.0", "name": unique("pctd"), "plugins": [
                {"type": "bridge", "bridge": self.bridge, "isGateway": True, "ipMasq": False,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": self.subnet}]],
                          "dataDir": os.path.join(self.dir, "ipam")}}]}, f)
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        mirrors = "".join(f'[{cri}.registry.mirrors."{host}"]\n  endpoint = ["http://{host}"]\n'
                          for host in insecure_registries)
        with open(self.config, "w") as f:
            f.write(f"""version = 2
root = "{self.root}"
state = "{self.state}"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{self.socket}"
[ttrpc]
  address = "{self.socket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[{cri}]
  sandbox_image = "{SANDBOX_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # This host refuses to lower oom_score_adj (runc's -998 for the sandbox fails with EPERM).
  restrict_oom_score_adj = true
[{cri}.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "{self.cni_conf}"
[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
{mirrors}""")

    def start(self) -> None:
        with open(self.output, "ab") as log:
            self.proc = subprocess.Popen(["containerd", "--config", self.config],
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        wait_for(lambda: self.proc.poll() is not None or answers(self.socket), 60, 0.05,
                 what="containerd listening")
        if self.proc.poll() is not None:
            raise RuntimeError(f"containerd did not start: {self.log()[-3000:]}")

    def log(self) -> str:
        with open(self.output, errors="replace") as f:
            return f.read()

    def import_images(self, archive: str) -> None:
        """An OCI archive (tar) into the CRI's namespace, by the names its index carries."""
        subprocess.run(["ctr", "--address", self.socket, "-n", "k8s.io", "images", "import",
                        "--no-unpack", archive], check=True, capture_output=True, timeout=300)

    def crictl(self, *args: str, check: bool = True,
               timeout: float = 120) -> subprocess.CompletedProcess:
        p = subprocess.run([refbin("crictl"), "--runtime-endpoint", self.endpoint,
                            "--image-endpoint", self.endpoint, "--timeout", "60s", *args],
                           capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"crictl {' '.join(args)}: {p.stderr.strip()}")
        return p

    def cleanup(self) -> None:
        errors = run_steps((self._remove_pods, lambda: stop(self.proc), self._kill_shims,
                            lambda: unmount_below(self.dir), lambda: remove_link(self.bridge),
                            self._remove_cgroup_parent))
        shutil.rmtree(self.dir, ignore_errors=True)
        if errors:
            raise errors[0]

    def _remove_pods(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        ids = self.crictl("pods", "-q", check=False).stdout.split()
        for pod in ids:
            self.crictl("stopp", pod, check=False)
            self.crictl("rmp", "-f", pod, check=False)

    def _kill_shims(self) -> None:
        """Shims of this containerd (their command line names its socket) and their children."""
        for pid in pids_naming(self.socket):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                continue

    def _remove_cgroup_parent(self) -> None:
        """/k8s.io where this containerd made it and left it empty (a busy one stays)."""
        for path in set(glob.glob("/sys/fs/cgroup/*/k8s.io") + glob.glob("/sys/fs/cgroup/k8s.io")
                        ) - self.cgroup_dirs_before:
            try:
                os.rmdir(path)
            except OSError:
                pass
