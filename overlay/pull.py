"""`image pull`: a manifest (through an index to the platform's), its config and layers from a
registry into the store, the layers unpacked, the image recorded under its name."""
from __future__ import annotations

from overlay import blobs, docker_auth, images as images_mod, layers as layers_mod, \
    manifest as m, reference
from overlay.errors import ImageError
from overlay.images import Image
from overlay.progress import Progress
from overlay.registry import RegistryClient
from overlay.store import Store


def pull(store: Store, ref_text: str, insecure: bool = False, auth_file: str | None = None,
         progress: Progress | None = None, platform: tuple[str, str] | None = None) -> Image:
    ref = reference.parse(ref_text)
    progress = progress or Progress(enabled=False)
    client = RegistryClient(ref.api_host, insecure=insecure,
                            credentials=docker_auth.lookup(ref.registry, auth_file))
    with store.adding():
        data, media_type, digest = client.manifest(ref.repository, ref.manifest_ref)
        if media_type in m.INDEXES:
            _, index = m.media_type_of(data, media_type, f"index {digest}")
            entry = m.select_platform(m.index_entries(index, f"{ref}: index"), f"{ref}", platform)
            data, media_type, digest = client.manifest(ref.repository, entry.digest)
            if media_type not in m.MANIFESTS:
                raise ImageError(f"{ref}: the index entry {entry.digest} is not a manifest")
        _, doc = m.media_type_of(data, media_type, f"manifest {digest}")
        manifest = m.parse_manifest(doc, media_type, f"manifest {digest}")
        for layer in manifest.layers:
            _check_layer_type(layer)
        blobs.put_bytes(store, data, digest)
        client.fetch_blob(store, ref.repository, manifest.config)
        for layer in manifest.layers:
            fetched = client.fetch_blob(
                store, ref.repository, layer,
                lambda done, total, d=layer.digest: progress.bytes(d, done, total))
            progress.status(layer.digest, "downloaded" if fetched else "exists")
        image = images_mod.from_manifest(store, str(ref), digest, manifest)
        layers_mod.ensure_unpacked(store, image, progress.status)
        images_mod.save(store, image)
    return image


def _check_layer_type(layer: m.Descriptor) -> None:
    if layer.media_type.endswith("+zstd"):
        raise ImageError(f"layer {layer.digest}: zstd-compressed layers are not supported (no "
                         "zstd decoder here); use an image with gzip layers")
    if "nondistributable" in layer.media_type or "foreign" in layer.media_type:
        raise ImageError(f"layer {layer.digest}: {layer.media_type}: foreign layers are not "
                         "supported")
