"""The images critest (cri-tools v1.36) uses, built here from Debian's busybox-static as
cri-tools' images/build makes them from busybox. Both ways critest gets them are served:

- imported beforehand under their upstream names (an OCI layout whose entries carry
  io.containerd.image.name, which `pycontainer image import` and `ctr images import` both read):
  critest creates containers from registry.k8s.io/e2e-test-images/busybox:1.29-2 and the like
  after checking ImageStatus, without pulling them;
- in a loopback registry for the pull tests, which critest reaches with -registry-prefix: it
  pulls <prefix>/<path> (PrepareImageName keeps the path and drops the tag), so every image is
  pushed at <path>:latest.

Not reproducible: test-image-digest (critest names it by the digest of the upstream image) and
nonewprivs. The web server images run busybox httpd, which answers GET / with 200 as the
networking tests want."""
from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import contextmanager
from typing import Iterator

from testlib import imagebuild as ib
from testlib.registry import Registry

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STAGING = "gcr.io/k8s-staging-cri-tools"
E2E = "registry.k8s.io/e2e-test-images"
SANDBOX_IMAGE = "pycontainer.test/cri-sandbox:1"

# cri-tools images/build's users (test-image-user-*), on its busybox passwd (www-data is 33).
_USERS = {"test-image-user-uid": "1002", "test-image-user-username": "www-data",
          "test-image-user-uid-group": "1003:1004", "test-image-user-username-group":
          "www-data:1004"}


# What the upstream images have and Debian's busybox-static lacks, as small scripts: pgrep and
# ipcs as the specs call them, and an "nginx" (its process name, pid file and "master process"
# command line, serving /www with busybox httpd).
_SCRIPTS = {
    "/usr/bin/pgrep": "#!/bin/sh\nfound=1\nfor p in /proc/[0-9]*; do\n"
                      "  [ \"$(cat $p/comm 2>/dev/null)\" = \"$1\" ] && echo ${p#/proc/} "
                      "&& found=0\ndone\nexit $found\n",
    "/usr/bin/ipcs": "#!/bin/sh\ncat /proc/sysvipc/shm\n",
    "/usr/sbin/nginx": "#!/bin/sh\necho $$ > /var/run/nginx.pid\ntrap 'exit 0' TERM\n"
                       "httpd -f -p 80 -h /www &\nwait\n",
}


def _busybox_base(workdir: str) -> bytes:
    rootfs = os.path.join(workdir, "rootfs")
    subprocess.run([os.path.join(REPO, "scripts", "busybox-rootfs.sh"), rootfs], check=True)
    # Applets as hard links to busybox, as in the upstream busybox image: masking one of them
    # (critest's MaskedPaths masks /bin/ls) must not mask the others.
    bin_dir = os.path.join(rootfs, "bin")
    for name in os.listdir(bin_dir):
        path = os.path.join(bin_dir, name)
        if os.path.islink(path) and os.readlink(path) == "busybox":
            os.unlink(path)
            os.link(os.path.join(bin_dir, "busybox"), path)
    with open(os.path.join(rootfs, "etc", "passwd"), "a") as f:
        f.write("www-data:x:33:33:www-data:/var/www:/bin/false\n"
                "default-user:x:1000:1000::/home/default-user:/bin/sh\n")
    with open(os.path.join(rootfs, "etc", "group"), "a") as f:
        f.write("www-data:x:33:\ngroup-defined-in-image:x:50000:default-user,user\n")
    os.makedirs(os.path.join(rootfs, "www"))
    os.makedirs(os.path.join(rootfs, "var", "run"), exist_ok=True)
    with open(os.path.join(rootfs, "www", "index.html"), "w") as f:
        f.write("<html><body>hello from busybox httpd</body></html>\n")
    for name, script in _SCRIPTS.items():
        path = os.path.join(rootfs, name.lstrip("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(script)
        os.chmod(path, 0o755)
    layer = ib.LayerTar().add_tree(rootfs).bytes()
    shutil.rmtree(rootfs)
    return layer


def _image(base: bytes, extra_file: str | None = None, **config: object) -> ib.Image:
    layers = [base]
    if extra_file:
        layers.append(ib.LayerTar().file(extra_file, b"").bytes())
    settings = {"Cmd": ["sh"], "WorkingDir": "/", "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
                "ExposedPorts": None, "Labels": None}
    settings.update(config)
    return ib.Image(layers, ib.image_config(layers, **settings), gzip_layers=())


def critest_images(base: bytes) -> dict[str, ib.Image]:
    """upstream name -> image."""
    httpd = ["httpd", "-f", "-h", "/www", "-p"]
    images = {
        f"{E2E}/busybox:1.29-2": _image(base),
        f"{E2E}/nginx:1.14-2": _image(base, Cmd=["/usr/sbin/nginx", "-g", "master process"]),
        f"{E2E}/httpd:2.4.39-4": _image(base, Cmd=["sh", "-c", "echo httpd; exec httpd -f -p 80 "
                                                               "-h /www"]),
        f"{STAGING}/hostnet-nginx-amd64:latest": _image(base, Cmd=httpd + ["12003"]),
        "registry.k8s.io/pause:3.9": _image(base, "pause", Entrypoint=["sleep", "2147483647"],
                                            Cmd=None),
        # containerd's sandbox image: its own content, as critest removes pause:3.9 by ID.
        SANDBOX_IMAGE: _image(base, "sandbox", Entrypoint=["sleep", "2147483647"], Cmd=None),
        f"{STAGING}/test-image-predefined-group:latest": _image(base, User="1000"),
    }
    for name, user in _USERS.items():
        images[f"{STAGING}/{name}:latest"] = _image(base, User=user)
    for name in ("test-image-1", "test-image-2", "test-image-3", "test-image-latest"):
        images[f"{STAGING}/{name}:latest"] = _image(base, name)
    same = _image(base, "same-image")
    for tag in ("1", "2", "3"):
        images[f"{STAGING}/test-image-tags:{tag}"] = same
    for tag in ("test", "all"):
        images[f"{STAGING}/test-image-tag:{tag}"] = _image(base, tag)
    return images


def write_layout(images: dict[str, ib.Image], layout: str) -> None:
    """An OCI layout of the images, each entry named by its upstream name."""
    entries = [img.descriptor(annotations={"io.containerd.image.name": name,
                                           "org.opencontainers.image.ref.name": name})
               for name, img in images.items()]
    ib.write_oci_layout(layout, entries, list(dict.fromkeys(images.values())))


def build(workdir: str) -> tuple[dict[str, ib.Image], str]:
    """The images and an OCI layout (workdir/layout) of them."""
    images = critest_images(_busybox_base(workdir))
    layout = os.path.join(workdir, "layout")
    write_layout(images, layout)
    return images, layout


def fill(registry: Registry, images: dict[str, ib.Image], layout: str) -> None:
    """Pushes every image at <path>:latest, as critest pulls it with -registry-prefix."""
    for name in images:
        path = name.split("/", 1)[1].rsplit(":", 1)[0]
        registry.push(layout, name, f"{path}:latest")


@contextmanager
def world(workdir: str) -> Iterator[tuple[Registry, str, str, str]]:
    """(registry, layout, archive, workdir): a registry filled with critest's images, their
    layout and an OCI archive of it (workdir/images.tar), for the length of a run of critest;
    the registry stopped after."""
    reg = Registry(os.path.join(workdir, "registry"))
    try:
        images, layout = build(workdir)
        fill(reg, images, layout)
        archive = os.path.join(workdir, "images.tar")
        ib.tar_directory(layout, archive)
        yield reg, layout, archive, workdir
    finally:
        reg.close()
