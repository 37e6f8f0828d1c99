"""CRI runtimes on their sockets for pykubelet's --container-runtime-endpoint tests: a
pycontainer-cri (testlib.cri_daemon) on the kubelet tests' image store, and a private
containerd 1.6 (testlib.containerd) holding busybox:1.36 and a busybox "pause" image
imported with `ctr images import`. remove_pods() stops and removes every sandbox through the
CRI (what the kubelet made), before the kubelet's cgroup root is removed."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

from testlib.containerd import Containerd
from testlib.cri_daemon import CriDaemon
from testlib.critest_images import SANDBOX_IMAGE
from testlib.images import IMAGE, REPO

RUNTIMES = ("pycontainer-cri", "containerd")


def busybox_archive(workdir: str) -> str:
    """An OCI archive of docker.io/library/busybox:1.36 (busybox-static, Cmd ["sh"]) and the
    sandbox image (the same with sleep as its entrypoint), named for ctr's import."""
    from testlib import imagebuild as ib

    rootfs = os.path.join(workdir, "rootfs")
    subprocess.run([os.path.join(REPO, "scripts", "busybox-rootfs.sh"), rootfs], check=True)
    base = ib.LayerTar().add_tree(rootfs).bytes()
    shutil.rmtree(rootfs)
    settings = {"WorkingDir": "/", "Env": ["PATH=/bin:/sbin"], "ExposedPorts": None,
                "Labels": None}
    busybox = ib.Image([base], ib.image_config([base], Cmd=["sh"], **settings), gzip_layers=())
    marker = ib.LayerTar().file("pause", b"").bytes()
    pause = ib.Image([base, marker], ib.image_config(
        [base, marker], Entrypoint=["sleep", "2147483647"], Cmd=None, **settings),
        gzip_layers=())
    named = {f"docker.io/library/{IMAGE}": busybox, SANDBOX_IMAGE: pause}
    layout = os.path.join(workdir, "layout")
    ib.write_oci_layout(layout, [img.descriptor(annotations={
        "io.containerd.image.name": name, "org.opencontainers.image.ref.name": name})
        for name, img in named.items()], list(named.values()))
    archive = os.path.join(workdir, "images.tar")
    ib.tar_directory(layout, archive)
    shutil.rmtree(layout)
    return archive


class RemoteRuntime:
    """One of RUNTIMES, started; endpoint, subnet (its pods' network) and crictl."""

    def __init__(self, kind: str, image_root: str) -> None:
        self.kind = kind
        self.daemon: CriDaemon | Containerd = CriDaemon(image_root) \
            if kind == "pycontainer-cri" else Containerd()
        self.endpoint = self.daemon.endpoint
        self.subnet = self.daemon.subnet

    def start(self) -> None:
        self.daemon.start()
        if isinstance(self.daemon, Containerd):
            workdir = tempfile.mkdtemp(prefix="pctd-img-")
            try:
                self.daemon.import_images(busybox_archive(workdir))
            finally:
                shutil.rmtree(workdir, ignore_errors=True)

    def crictl(self, *args: str) -> str:
        return self.daemon.crictl(*args).stdout

    def sandboxes(self, pod_uid: str) -> list[str]:
        return self.crictl("pods", "-q", "--label",
                           f"io.kubernetes.pod.uid={pod_uid}").split()

    def remove_pods(self) -> None:
        for pod in self.crictl("pods", "-q").split():
            self.daemon.crictl("stopp", pod, check=False)
            self.daemon.crictl("rmp", "-f", pod, check=False)

    def cleanup(self) -> None:
        self.daemon.cleanup()
