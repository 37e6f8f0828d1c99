"""The busybox:1.36 image store the kubelet, CRI and cluster tests run their pods from: one
layer of busybox-static, Cmd ["sh"], imported with `pycontainer image import` as a user would."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from typing import Iterator

from testlib import imagebuild as ib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
IMAGE = "busybox:1.36"


def make_image_store(base: str) -> str:
    """A store under base holding IMAGE; returns its root."""
    rootfs = os.path.join(base, "rootfs")
    subprocess.run([os.path.join(REPO, "scripts", "busybox-rootfs.sh"), rootfs], check=True)
    layer = ib.LayerTar().add_tree(rootfs).bytes()
    image = ib.Image([layer], ib.image_config([layer], Cmd=["sh"], WorkingDir="/",
                                              Env=["PATH=/bin:/sbin"], ExposedPorts=None,
                                              Labels=None), gzip_layers=())
    layout = os.path.join(base, "layout")
    ib.write_oci_layout(layout, [image.descriptor()], [image])
    store_root = os.path.join(base, "store")
    subprocess.run([os.path.join(BIN, "pycontainer"), "--image-root", store_root, "image",
                    "import", layout, "--name", IMAGE], check=True, capture_output=True)
    shutil.rmtree(rootfs)
    return store_root


@contextmanager
def image_store(base: str) -> Iterator[str]:
    """make_image_store(base) for the length of a fixture; its snapshots (mounted rootfs
    layers) removed after."""
    from overlay import snapshots
    from overlay.store import Store

    store_root = make_image_store(base)
    yield store_root
    store = Store(store_root)
    for key in snapshots.list_keys(store):
        snapshots.remove(store, key)
