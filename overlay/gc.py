"""Garbage collection: deletes the blobs and unpacked layers that no image record or snapshot
uses any more, and what interrupted pulls and unpacks left behind. Runs under the store's
exclusive gc lock, so no pull, import or snapshot creation is halfway meanwhile."""
from __future__ import annotations

import os
import shutil

from overlay import images as images_mod, layers as layers_mod, \
    snapshots as snapshots_mod
from overlay.store import Store


def collect(store: Store) -> dict[str, int]:
    """Returns how many blobs and layers it removed."""
    removed = {"blobs": 0, "layers": 0}
    with store.collecting():
        images = images_mod.list_all(store)
        blobs: set[str] = set()
        chains: set[str] = snapshots_mod.layers_in_use(store)
        for image in images:
            blobs.update((image.digest, image.config, *(layer.digest for layer in image.layers)))
            chains.update(layers_mod.chain_ids(image.diff_ids))
        for name in os.listdir(store.path("blobs", "sha256")):
            if "sha256:" + name not in blobs:
                os.unlink(store.path("blobs", "sha256", name))
                removed["blobs"] += 1
        dirs_in_use = {"empty"}
        for name in os.listdir(store.path("layers")):
            chain_id = "sha256:" + name.removesuffix(".json")
            record = layers_mod.record(store, chain_id) if name.endswith(".json") else None
            if record is not None and chain_id in chains:
                dirs_in_use.add(record["dir"])
                continue
            os.unlink(store.path("layers", name))
            removed["layers"] += record is not None
        for name in os.listdir(store.path("l")):
            if name not in dirs_in_use:
                shutil.rmtree(store.path("l", name), ignore_errors=True)
        for name in os.listdir(store.path("ingest")):
            os.unlink(store.path("ingest", name))
    return removed


