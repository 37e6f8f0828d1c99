"""Builds test images from busybox-static without docker: layer tars made with tarfile, then an
OCI image layout (directory or tar) or a `docker save` archive around them.

The busybox image has three layers:
  1. a busybox root filesystem, plus /data/old.txt, /data/keep.txt, /opq/a, /opq/sub/b, /etc/motd
  2. a whiteout of /data/old.txt, /opq made opaque with /opq/new, a hard link /data/hl ->
     /data/keep2.txt, a symlink /data/motd -> /etc/motd, a file owned by 1000:1000 mode 0640
  3. (gzip) a new /etc/motd
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import time

MTIME = 1_700_000_000
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class LayerTar:
    """A layer archive written entry by entry."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)

    def _info(self, name: str, kind: bytes, mode: int, uid: int = 0, gid: int = 0,
              **extra: object) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mode = mode
        info.uid, info.gid = uid, gid
        info.mtime = MTIME
        for key, value in extra.items():
            setattr(info, key, value)
        return info

    def dir(self, name: str, mode: int = 0o755, **kw: object) -> LayerTar:
        self.tar.addfile(self._info(name, tarfile.DIRTYPE, mode, **kw))
        return self

    def file(self, name: str, data: bytes, mode: int = 0o644, **kw: object) -> LayerTar:
        info = self._info(name, tarfile.REGTYPE, mode, **kw)
        info.size = len(data)
        self.tar.addfile(info, io.BytesIO(data))
        return self

    def symlink(self, name: str, target: str) -> LayerTar:
        self.tar.addfile(self._info(name, tarfile.SYMTYPE, 0o777, linkname=target))
        return self

    def hardlink(self, name: str, target: str) -> LayerTar:
        self.tar.addfile(self._info(name, tarfile.LNKTYPE, 0o644, linkname=target))
        return self

    def chardev(self, name: str, major: int, minor: int, mode: int = 0o666) -> LayerTar:
        self.tar.addfile(self._info(name, tarfile.CHRTYPE, mode, devmajor=major, devminor=minor))
        return self

    def add_tree(self, root: str) -> LayerTar:
        for top, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                full = os.path.join(top, name)
                rel = os.path.relpath(full, root)
                info = self.tar.gettarinfo(full, rel)
                info.uid, info.gid, info.uname, info.gname = info.uid, info.gid, "", ""
                info.mtime = MTIME
                if info.isreg():
                    with open(full, "rb") as f:
                        self.tar.addfile(info, f)
                else:
                    self.tar.addfile(info)
        return self

    def bytes(self) -> bytes:
        self.tar.close()
        return self.buf.getvalue()


def busybox_layers(rootfs: str) -> list[bytes]:
    """The three layers' uncompressed tars."""
    base = LayerTar().add_tree(rootfs)
    base.dir("data").file("data/old.txt", b"old\n").file("data/keep.txt", b"keep\n")
    base.dir("opq").file("opq/a", b"a\n").dir("opq/sub").file("opq/sub/b", b"b\n")
    base.file("etc/motd", b"motd 1\n")
    second = LayerTar().dir("data").file("data/.wh.old.txt", b"")
    second.dir("opq").file("opq/.wh..wh..opq", b"").file("opq/new", b"new\n")
    second.file("data/keep2.txt", b"linked\n").hardlink("data/hl", "data/keep2.txt")
    second.symlink("data/motd", "/etc/motd")
    second.file("data/owned", b"secret\n", mode=0o640, uid=1000, gid=1000)
    third = LayerTar().dir("etc").file("etc/motd", b"motd 3\n")
    return [base.bytes(), second.bytes(), third.bytes()]


def image_config(layer_tars: list[bytes], arch: str = "amd64", **config: object) -> dict:
    c = {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=hello"], "Cmd": ["sh"],
         "WorkingDir": "/data", "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
         "Labels": {"org.example.test": "yes"}}
    c.update(config)
    return {"architecture": arch, "os": "linux", "created": "2023-11-14T22:13:20Z",
            "config": c, "rootfs": {"type": "layers", "diff_ids": [digest(t) for t in layer_tars]}}


class Image:
    """Blobs of one single-platform image: config, layers (as stored, some gzip) and manifest."""

    def __init__(self, layer_tars: list[bytes], config: dict, gzip_layers: tuple[int, ...] = (2,)):
        self.blobs: dict[str, bytes] = {}
        self.layer_tars = layer_tars
        layers = []
        for i, tar in enumerate(layer_tars):
            data = gzip.compress(tar, mtime=0) if i in gzip_layers else tar
            media = OCI_LAYER + "+gzip" if i in gzip_layers else OCI_LAYER
            layers.append({"mediaType": media, "digest": self._add(data), "size": len(data)})
        config_bytes = json.dumps(config).encode()
        self.config_digest = self._add(config_bytes)
        self.manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": self.config_digest,
                       "size": len(config_bytes)},
            "layers": layers}).encode()
        self.manifest_digest = self._add(self.manifest)

    def _add(self, data: bytes) -> str:
        d = digest(data)
        self.blobs[d] = data
        return d

    def descriptor(self, **extra: object) -> dict:
        return {"mediaType": OCI_MANIFEST, "digest": self.manifest_digest,
                "size": len(self.manifest), **extra}


def write_oci_layout(path: str, entries: list[dict], images: list[Image],
                     extra_blobs: dict[str, bytes] | None = None) -> None:
    os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(path, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    blobs = dict(extra_blobs or {})
    for image in images:
        blobs.update(image.blobs)
    for d, data in blobs.items():
        with open(os.path.join(path, "blobs", "sha256", d[7:]), "wb") as f:
            f.write(data)
    with open(os.path.join(path, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}, f)


def multi_arch_index(amd64: Image, other: Image) -> tuple[bytes, dict]:
    """An index of the real image (linux/amd64) and a fake second architecture."""
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        other.descriptor(platform={"os": "linux", "architecture": "s390x"}),
        amd64.descriptor(platform={"os": "linux", "architecture": "amd64"}),
    ]}).encode()
    return index, {"mediaType": OCI_INDEX, "digest": digest(index), "size": len(index)}


def tar_directory(src: str, dest: str, compress: bool = False) -> None:
    with tarfile.open(dest, "w:gz" if compress else "w") as tar:
        for name in sorted(os.listdir(src)):
            tar.add(os.path.join(src, name), name)


def write_docker_archive(dest: str, image: Image, tags: list[str], legacy: bool = True) -> None:
    """`docker save` output: legacy form (<id>/layer.tar, <hex>.json config) or docker 25's
    (blobs/sha256/..., layer entries pointing there). Layers stored uncompressed, as docker does."""
    with tarfile.open(dest, "w") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), int(time.time())
            tar.addfile(info, io.BytesIO(data))

        config = image.blobs[image.config_digest]
        layer_paths = []
        for i, layer in enumerate(image.layer_tars):
            if legacy:
                path = f"{hashlib.sha256(str(i).encode()).hexdigest()}/layer.tar"
            else:
                path = f"blobs/sha256/{digest(layer)[7:]}"
            add(path, layer)
            layer_paths.append(path)
        config_path = f"{image.config_digest[7:]}.json" if legacy else \
            f"blobs/sha256/{image.config_digest[7:]}"
        add(config_path, config)
        add("manifest.json", json.dumps([{"Config": config_path, "RepoTags": tags,
                                          "Layers": layer_paths}]).encode())
