"""Manifests and indexes, OCI and Docker schema 2: parsing, and picking the platform's manifest
out of an index / manifest list."""
from __future__ import annotations

import json
import os

from overlay import digest as digest_mod
from overlay.errors import ImageError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")
INDEXES = (OCI_INDEX, DOCKER_LIST)
MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
ACCEPT = ", ".join((*INDEXES, *MANIFESTS))

# uname's machine -> Go's GOARCH, the names of image platforms and of the kubernetes.io/arch label
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
           "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


class Descriptor:
    __slots__ = ("media_type", "digest", "size", "platform", "annotations")

    def __init__(self, media_type: str, digest: str, size: int, platform: dict | None = None,
                 annotations: dict | None = None) -> None:
        self.media_type = media_type
        self.digest = digest
        self.size = size
        self.platform = platform
        self.annotations = annotations


class Manifest:
    __slots__ = ("media_type", "config", "layers")

    def __init__(self, media_type: str, config: Descriptor, layers: tuple[Descriptor, ...]) -> None:
        self.media_type = media_type
        self.config = config
        self.layers = layers


def host_architecture() -> str:
    """This machine's architecture as Go names it (amd64, arm64...)."""
    machine = os.uname().machine
    return _GOARCH.get(machine, machine)


def host_platform() -> tuple[str, str]:
    return "linux", host_architecture()


def media_type_of(data: bytes, header_type: str | None, what: str) -> tuple[str, dict]:
    """The document's media type (its own field, else the HTTP Content-Type, else its shape)
    and the parsed JSON."""
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ImageError(f"{what}: not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ImageError(f"{what}: not a JSON object")
    media_type = doc.get("mediaType") or (header_type or "").split(";")[0].strip()
    if doc.get("schemaVersion") == 1 or media_type in DOCKER_SCHEMA1:
        raise ImageError(f"{what}: Docker schema 1 manifests are not supported (deprecated); "
                         "push the image again with a current client")
    if media_type not in (*INDEXES, *MANIFESTS):
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST if "layers" in doc else \
            media_type
    if media_type not in (*INDEXES, *MANIFESTS):
        raise ImageError(f"{what}: unknown media type {media_type!r}")
    return media_type, doc


def descriptor(raw: object, what: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise ImageError(f"{what}: not a descriptor object")
    digest = digest_mod.check(raw.get("digest", ""), f"{what}.digest")
    size = raw.get("size")
    if not isinstance(size, int) or size < 0:
        raise ImageError(f"{what}.size: must be a non-negative integer")
    return Descriptor(str(raw.get("mediaType", "")), digest, size, raw.get("platform"),
                      raw.get("annotations"))


def parse_manifest(doc: dict, media_type: str, what: str) -> Manifest:
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise ImageError(f"{what}.layers: must be a list")
    return Manifest(media_type, descriptor(doc.get("config"), f"{what}.config"),
                    tuple(descriptor(layer, f"{what}.layers[{i}]") for i, layer in enumerate(layers)))


def index_entries(doc: dict, what: str) -> list[Descriptor]:
    entries = doc.get("manifests")
    if not isinstance(entries, list):
        raise ImageError(f"{what}.manifests: must be a list")
    return [descriptor(e, f"{what}.manifests[{i}]") for i, e in enumerate(entries)]


def select_platform(entries: list[Descriptor], what: str,
                    platform: tuple[str, str] | None = None) -> Descriptor:
    """The entry for linux and the host's architecture (amd64 here). Entries without a platform
    (attestations, single-platform indexes) are taken only when nothing else matches."""
    os_name, arch = platform or host_platform()
    plain = []
    for entry in entries:
        p = entry.platform
        if p is None:
            if entry.media_type in (*MANIFESTS, ""):
                plain.append(entry)
            continue
        if p.get("os") == os_name and p.get("architecture") == arch:
            return entry
    if len(plain) == 1 and len(entries) == 1:
        return plain[0]
    offered = sorted({f"{e.platform.get('os')}/{e.platform.get('architecture')}"
                      for e in entries if e.platform})
    raise ImageError(f"{what}: no manifest for {os_name}/{arch} (offered: "
                     f"{', '.join(offered) or 'none'})")
