"""The on-disk layout of an image store and its locks.

    <root>/blobs/sha256/<hex>        content-addressed blobs (manifests, configs, layer archives)
    <root>/ingest/                   blobs being written or downloaded (<hex>.partial resumes)
    <root>/images/<name>.json        image records: name -> manifest digest, config, layers
    <root>/layers/<chain hex>.json   an unpacked layer: its directory under l/, diff ID, size
    <root>/l/<id>/                   unpacked layer contents; ids are short so that the overlayfs
                                     option string of a deep image fits in one page
    <root>/snapshots/<key>/          a container's rootfs mount point, upper and work dirs
    <root>/locks/                    flock(2) files: one per blob / layer, and the gc lock

Every process that adds content holds the gc lock shared; garbage collection holds it exclusive,
so it never deletes a blob or layer that a running pull or import has not recorded yet.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator

from overlay import digest as digest_mod
from overlay.errors import ImageError

DEFAULT_ROOT = "/var/lib/pycontainer"
ROOT_ENV = "PYCONTAINER_IMAGE_ROOT"
_DIRS = ("blobs/sha256", "ingest", "images", "layers", "l", "snapshots", "locks")


class Store:
    def __init__(self, root: str) -> None:
        root = os.path.abspath(root)
        if "," in root or ":" in root:
            # Both separate overlayfs mount options; the kernel has no escape for them.
            raise ImageError(f"image root {root}: must not contain ',' or ':'")
        self.root = root
        for d in _DIRS:
            os.makedirs(os.path.join(root, d), mode=0o700, exist_ok=True)

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    def blob_path(self, digest: str) -> str:
        return self.path("blobs", "sha256", digest_mod.hex_of(digest))

    def has_blob(self, digest: str) -> bool:
        return os.path.exists(self.blob_path(digest))

    def read_blob(self, digest: str) -> bytes:
        try:
            with open(self.blob_path(digest), "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise ImageError(f"blob {digest}: not in the store {self.root}") from None

    def read_json_blob(self, digest: str, what: str) -> dict:
        try:
            value = json.loads(self.read_blob(digest))
        except json.JSONDecodeError as e:
            raise ImageError(f"{what} {digest}: not JSON: {e}") from None
        if not isinstance(value, dict):
            raise ImageError(f"{what} {digest}: not a JSON object")
        return value

    @contextlib.contextmanager
    def lock(self, name: str, shared: bool = False) -> Iterator[None]:
        fd = os.open(self.path("locks", name), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def adding(self) -> contextlib.AbstractContextManager[None]:
        """Held while adding content that no image or snapshot references yet."""
        return self.lock("gc", shared=True)

    def collecting(self) -> contextlib.AbstractContextManager[None]:
        return self.lock("gc")


def default_root() -> str:
    return os.environ.get(ROOT_ENV) or DEFAULT_ROOT


def write_json_atomic(path: str, value: object) -> None:
    """Readers see the old file or the new one, never a part; a crash leaves no partial file."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)
    fsync_dir(os.path.dirname(path))


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
