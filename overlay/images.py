"""Image records: <root>/images/<name>.json maps a normalized reference to the image's manifest
digest, config digest and layers (blob digest, media type, size, diff ID)."""
from __future__ import annotations

import json
import os

from overlay import digest as digest_mod, manifest as manifest_mod, reference
from overlay.errors import ImageError
from overlay.store import Store, write_json_atomic
from overlay.timefmt import rfc3339


class Layer:
    __slots__ = ("digest", "media_type", "size", "diff_id")

    def __init__(self, digest: str, media_type: str, size: int, diff_id: str) -> None:
        self.digest = digest
        self.media_type = media_type
        self.size = size
        self.diff_id = diff_id

    def to_json(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__}


class Image:
    """A plain class, not a dataclass: `run --image` starts containers through it."""

    __slots__ = ("name", "digest", "config", "layers", "created")

    def __init__(self, name: str, digest: str, config: str, layers: tuple[Layer, ...],
                 created: str) -> None:
        self.name = name
        self.digest = digest
        self.config = config
        self.layers = layers
        self.created = created

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Image) and self.to_json() == other.to_json()

    @property
    def diff_ids(self) -> list[str]:
        return [layer.diff_id for layer in self.layers]

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.layers)

    def to_json(self) -> dict:
        raw = {name: getattr(self, name) for name in self.__slots__}
        raw["layers"] = [layer.to_json() for layer in self.layers]
        return raw

    @classmethod
    def from_json(cls, raw: dict) -> Image:
        layers = tuple(Layer(**layer) for layer in raw["layers"])
        return cls(raw["name"], raw["digest"], raw["config"], layers, raw["created"])


def from_manifest(store: Store, name: str, manifest_digest: str,
                  manifest: manifest_mod.Manifest) -> Image:
    """The record for a manifest whose config blob is in the store: pairs each layer with its
    diff ID from the config."""
    config = store.read_json_blob(manifest.config.digest, "image config")
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list):
        raise ImageError(f"image config {manifest.config.digest}: rootfs.diff_ids: must be a list")
    if len(diff_ids) != len(manifest.layers):
        raise ImageError(f"image {name}: the manifest has {len(manifest.layers)} layers, its "
                         f"config {len(diff_ids)} diff IDs")
    layers = tuple(Layer(d.digest, d.media_type, d.size, digest_mod.check(diff, "diff ID"))
                   for d, diff in zip(manifest.layers, diff_ids))
    return Image(name, manifest_digest, manifest.config.digest, layers,
                 rfc3339())


def _path(store: Store, name: str) -> str:
    # Names hold '/', ':' and '@'; '%' escapes keep one flat, reversible file name.
    return store.path("images", name.replace("%", "%25").replace("/", "%2F") + ".json")


def save(store: Store, image: Image) -> None:
    write_json_atomic(_path(store, image.name), image.to_json())


def load(store: Store, name: str) -> Image:
    """The image a user's reference names (normalized: `busybox` is
    docker.io/library/busybox:latest)."""
    canonical = str(reference.parse(name))
    try:
        with open(_path(store, canonical)) as f:
            return Image.from_json(json.load(f))
    except FileNotFoundError:
        raise ImageError(f"image {name}: not in the store {store.root} (pull or import it "
                         "first)") from None


def list_all(store: Store) -> list[Image]:
    images = []
    for entry in sorted(os.listdir(store.path("images"))):
        if entry.endswith(".json"):
            try:
                with open(store.path("images", entry)) as f:
                    images.append(Image.from_json(json.load(f)))
            except FileNotFoundError:
                continue  # removed meanwhile
    return images


def remove(store: Store, name: str) -> Image:
    image = load(store, name)
    os.unlink(_path(store, image.name))
    return image
