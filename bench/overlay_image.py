#!/usr/bin/env python3
"""Image store figures, each beside a reference measured in the same run:

  - download throughput of one 64 MiB layer from a local docker-registry: our registry client
    (overlay.registry, digest verified, written to the store) vs `skopeo copy` of the image
    (docker:// -> oci:), both over loopback;
  - unpack time of the busybox layer (2 MB, ~400 entries): overlay.unpack vs GNU `tar -x`
    (--same-owner --xattrs);
  - snapshot create + remove (mkdir, record, overlayfs mount; unmount, delete) vs the bare
    syscalls of it: mkdir(2) of the mount point, upper and work directories, mount(2),
    umount(2), rmdir(2) of the four.

As root: .venv/bin/python bench/overlay_image.py [--runs 5]
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))

from testlib import imagebuild as ib  # noqa: E402
from testlib.registry import Registry  # noqa: E402

from linux.syscalls import Syscalls  # noqa: E402
from overlay import importer, layers, manifest as m, snapshots, unpack  # noqa: E402
from overlay.registry import RegistryClient  # noqa: E402
from overlay.store import Store  # noqa: E402

BIG = 64 << 20


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def report(name: str, ours: list[float], ref: list[float], unit: str = "ms",
           scale: float = 1000) -> None:
    a, b = statistics.median(ours), statistics.median(ref)
    print(f"{name:<44} ours {a * scale:9.1f} {unit}   reference {b * scale:9.1f} {unit}   "
          f"ratio {a / b:5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    top = tempfile.mkdtemp(prefix="overlay-bench-")
    reg = None
    try:
        subprocess.run([os.path.join(REPO, "scripts", "busybox-rootfs.sh"), f"{top}/rootfs"],
                       check=True)
        tars = ib.busybox_layers(f"{top}/rootfs")
        big = ib.LayerTar().file("big", os.urandom(BIG)).bytes()
        image = ib.Image([tars[0], big], ib.image_config([tars[0], big]), gzip_layers=(1,))
        layout = f"{top}/layout"
        ib.write_oci_layout(layout, [image.descriptor(
            annotations={"org.opencontainers.image.ref.name": "latest"})], [image])
        os.mkdir(f"{top}/registry")
        reg = Registry(f"{top}/registry")
        reg.push(layout, "latest", "big:latest")
        client = RegistryClient(reg.host, insecure=True)
        data, _, _ = client.manifest("big", "latest")
        _, doc = m.media_type_of(data, None, "manifest")
        layer = m.parse_manifest(doc, m.OCI_MANIFEST, "manifest").layers[1]

        ours, ref = [], []
        for i in range(runs):
            store = Store(f"{top}/dl{i}")
            ours.append(timed(lambda: RegistryClient(reg.host, insecure=True).fetch_blob(
                store, "big", layer)))
            ref.append(timed(lambda: subprocess.run(
                ["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                 f"docker://{reg.host}/big:latest", f"oci:{top}/skopeo{i}:latest"],
                check=True, capture_output=True)))
            shutil.rmtree(f"{top}/dl{i}")
            shutil.rmtree(f"{top}/skopeo{i}")
        mib = layer.size / (1 << 20)
        print(f"{'pull of a ' + f'{mib:.0f} MiB layer (MiB/s, higher is better)':<44} ours "
              f"{mib / statistics.median(ours):9.1f} MiB/s reference "
              f"{mib / statistics.median(ref):9.1f} MiB/s ratio "
              f"{statistics.median(ref) / statistics.median(ours):5.2f}")

        ours, ref = [], []
        with open(f"{top}/busybox.tar", "wb") as f:
            f.write(tars[0])
        for i in range(runs):
            dest = f"{top}/u{i}"
            os.mkdir(dest)
            ours.append(timed(lambda: unpack.unpack(io.BytesIO(tars[0]), dest, None, "busybox")))
            os.mkdir(f"{dest}-tar")
            ref.append(timed(lambda: subprocess.run(
                ["tar", "-x", "--same-owner", "--xattrs", "-f", f"{top}/busybox.tar", "-C",
                 f"{dest}-tar"], check=True)))
        report("unpack of the busybox layer", ours, ref)

        store = Store(f"{top}/store")
        record, = importer.import_archive(store, layout, name="bb:1")
        chain = layers.chain_ids(record.diff_ids)
        lower = ":".join(layers.directory(store, c) for c in reversed(chain))
        ours, ref = [], []
        sys_ = Syscalls()

        def bare(i: int) -> None:
            # The least any snapshotter does: the mount point, upper and work directories,
            # the mount; then the unmount and the directories gone (overlayfs adds work/work).
            target, upper, work = (f"{top}/m/{n}{i}" for n in ("t", "u", "w"))
            for d in (target, upper, work):
                os.mkdir(d)
            sys_.mount("overlay", target, "overlay", 0,
                       f"lowerdir={lower},upperdir={upper},workdir={work}")
            sys_.umount2(target)
            for d in (target, upper, f"{work}/work", work):
                os.rmdir(d)
        os.mkdir(f"{top}/m")
        for i in range(runs * 4):
            ours.append(timed(lambda: (snapshots.create(store, f"s{i}", chain),
                                       snapshots.remove(store, f"s{i}"))))
            ref.append(timed(lambda: bare(i)))
        report("snapshot create + remove", ours, ref)
    finally:
        if reg is not None:
            reg.close()
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
