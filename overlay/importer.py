"""Importing images from an OCI image layout (a directory or a tar of one, gzip or not) and from
`docker save` archives (manifest.json + RepoTags; the legacy <id>/layer.tar form and docker 25's
blobs/sha256 form).

The archive is read once, as a stream: every blob goes into the store as it passes (verified
against its name under blobs/sha256/, hashed otherwise), the small JSON documents stay in memory.
A docker archive has no manifest blob: one is written (OCI media types) so that every image in
the store is a manifest, a config and layers alike.
"""
from __future__ import annotations

import json
import os
import posixpath
import re
import tarfile
from collections.abc import Callable, Iterator
from typing import BinaryIO

from overlay import blobs, gc, images as images_mod, layers as layers_mod, \
    manifest as m, reference
from overlay.errors import ImageError
from overlay.images import Image
from overlay.store import Store

_BLOB_PATH = re.compile(r"blobs/sha256/([0-9a-f]{64})")
_DOCUMENTS = ("index.json", "manifest.json", "oci-layout", "repositories")
_MAX_DOCUMENT = 16 << 20
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"


class _Contents:
    """What the archive held: documents by path, blobs by path, symlinks by path."""

    def __init__(self) -> None:
        self.documents: dict[str, bytes] = {}
        self.blobs: dict[str, str] = {}
        self.links: dict[str, str] = {}

    def resolve(self, path: str) -> str:
        for _ in range(16):
            if path not in self.links:
                return path
            path = posixpath.normpath(posixpath.join(posixpath.dirname(path), self.links[path]))
        raise ImageError(f"archive path {path}: too many symlinks")

    def document(self, path: str) -> bytes | None:
        return self.documents.get(self.resolve(path))

    def blob(self, path: str) -> str:
        resolved = self.resolve(posixpath.normpath(path))
        if resolved in self.blobs:
            return self.blobs[resolved]
        raise ImageError(f"archive: {path} is missing")


def import_archive(store: Store, source: str, name: str | None = None,
                   report: Callable[[str, str], None] | None = None) -> list[Image]:
    """Imports every image of `source` (a directory or a tar file); `name` names the one image
    the archive holds. Returns the image records written (their layers unpacked)."""
    with store.adding():
        contents = _read(store, source)
        if contents.document("index.json") is not None:
            found = _oci_images(store, contents, source, named=name is not None)
        elif contents.document("manifest.json") is not None:
            found = _docker_images(store, contents, source)
        else:
            raise ImageError(f"{source}: neither an OCI image layout (index.json) nor a docker "
                             "save archive (manifest.json)")
        if not found:
            raise ImageError(f"{source}: holds no image")
        records = []
        for names, manifest_digest, manifest in found:
            if name is not None:
                if len(found) > 1:
                    raise ImageError(f"--name: {source} holds {len(found)} images; it can name "
                                     "only one")
                names = [str(reference.parse(name))]
            if not names:
                raise ImageError(f"{source}: image {manifest_digest} has no name: give one "
                                 "with --name")
            for image_name in names:
                image = images_mod.from_manifest(store, image_name, manifest_digest, manifest)
                layers_mod.ensure_unpacked(store, image, report)
                images_mod.save(store, image)
                records.append(image)
    # The archive's other blobs (other platforms, documents) are of no use now.
    gc.collect(store)
    return records


def _read(store: Store, source: str) -> _Contents:
    contents = _Contents()
    for path, kind, payload in _members(source):
        path = posixpath.normpath(path).lstrip("/")
        if kind == "link":
            contents.links[path] = payload
            continue
        match = _BLOB_PATH.fullmatch(path)
        if match:
            contents.blobs[path] = blobs.put_stream(store, payload, "sha256:" + match.group(1))
        elif path in _DOCUMENTS or (path.endswith(".json") and "/" not in path):
            data = payload.read(_MAX_DOCUMENT + 1)
            if len(data) > _MAX_DOCUMENT:
                raise ImageError(f"{source}: {path} is too large for an image document")
            contents.documents[path] = data
            if path not in _DOCUMENTS:  # a docker archive's image config, <hex>.json
                contents.blobs[path] = blobs.put_bytes(store, data)
        else:
            contents.blobs[path] = blobs.put_stream(store, payload)
    return contents


def _members(source: str) -> Iterator[tuple[str, str, BinaryIO | str]]:
    """(path, "file" or "link", stream or link target) for every file of the archive."""
    if os.path.isdir(source):
        for top, _dirs, files in os.walk(source):
            for file_name in files:
                full = os.path.join(top, file_name)
                rel = os.path.relpath(full, source)
                with open(full, "rb") as f:
                    yield rel, "file", f
        return
    try:
        tar = tarfile.open(source, mode="r|*")
    except (tarfile.TarError, OSError) as e:
        raise ImageError(f"{source}: not a tar archive or directory: {e}") from None
    with tar:
        try:
            for member in tar:
                if member.isreg():
                    yield member.name, "file", tar.extractfile(member)
                elif member.issym():
                    yield member.name, "link", member.linkname
                elif member.islnk():
                    yield member.name, "link", "/" + member.linkname
        except (tarfile.TarError, EOFError) as e:
            raise ImageError(f"{source}: broken tar archive: {e}") from None


def _oci_images(store: Store, contents: _Contents, source: str, named: bool) -> list:
    what = f"{source}: index.json"
    media_type, index = m.media_type_of(contents.document("index.json"), m.OCI_INDEX, what)
    found = []
    for i, entry in enumerate(m.index_entries(index, what)):
        where = f"{what} manifests[{i}]"
        digest, manifest = _platform_manifest(store, entry, where)
        found.append(([] if named else _names(entry.annotations or {}, where), digest, manifest))
    return found


def _platform_manifest(store: Store, entry: m.Descriptor, what: str) -> tuple[str, m.Manifest]:
    """The manifest of `entry`, through a nested index if it is one."""
    for _ in range(4):
        data = _blob(store, entry.digest, what)
        media_type, doc = m.media_type_of(data, entry.media_type, f"{what} {entry.digest}")
        if media_type in m.MANIFESTS:
            return entry.digest, m.parse_manifest(doc, media_type, f"manifest {entry.digest}")
        entry = m.select_platform(m.index_entries(doc, f"index {entry.digest}"),
                                  f"index {entry.digest}")
    raise ImageError(f"{what}: indexes nested too deep")


def _names(annotations: dict, what: str) -> list[str]:
    full = annotations.get(CONTAINERD_NAME)
    if full:
        return [str(reference.parse(full))]
    ref_name = annotations.get(REF_NAME)
    if not ref_name:
        return []
    if "/" not in ref_name and ":" not in ref_name and "@" not in ref_name:
        raise ImageError(f"{what}: names only the tag {ref_name!r}: give the image a name with "
                         "--name")
    return [str(reference.parse(ref_name))]


def _docker_images(store: Store, contents: _Contents, source: str) -> list:
    what = f"{source}: manifest.json"
    try:
        entries = json.loads(contents.document("manifest.json"))
    except json.JSONDecodeError as e:
        raise ImageError(f"{what}: not JSON: {e}") from None
    if not isinstance(entries, list):
        raise ImageError(f"{what}: must be a list")
    found = []
    for i, entry in enumerate(entries):
        where = f"{what}[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str) or \
                not isinstance(entry.get("Layers"), list):
            raise ImageError(f"{where}: needs Config and Layers")
        config = contents.blob(entry["Config"])
        layers = [contents.blob(path) for path in entry["Layers"]]
        doc = {
            "schemaVersion": 2, "mediaType": m.OCI_MANIFEST,
            "config": {"mediaType": m.OCI_CONFIG, "digest": config,
                       "size": os.path.getsize(store.blob_path(config))},
            "layers": [{"mediaType": _layer_type(store, layer), "digest": layer,
                        "size": os.path.getsize(store.blob_path(layer))} for layer in layers],
        }
        data = json.dumps(doc, separators=(",", ":")).encode()
        digest = blobs.put_bytes(store, data)
        names = [str(reference.parse(tag)) for tag in entry.get("RepoTags") or []]
        found.append((names, digest, m.parse_manifest(doc, m.OCI_MANIFEST, where)))
    return found


def _layer_type(store: Store, digest: str) -> str:
    with open(store.blob_path(digest), "rb") as f:
        return m.OCI_LAYER + "+gzip" if f.read(2) == b"\x1f\x8b" else m.OCI_LAYER


def _blob(store: Store, digest: str, what: str) -> bytes:
    if not store.has_blob(digest):
        raise ImageError(f"{what}: blob {digest} is missing from the archive")
    return store.read_blob(digest)
