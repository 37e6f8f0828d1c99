"""Unpacked layers, one per chain ID, shared by every image and container that stacks them.

A layer's directory holds its own changes only (whiteouts included); its place in a stack is the
chain ID, sha256 of the parent's chain ID, a space and its diff ID (image-spec config.md). It is
unpacked under the layer's lock into a fresh short-named directory under l/; its record
(layers/<chain hex>.json) is written last, so a record always means a complete layer.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable

from overlay import digest as digest_mod
from overlay.errors import ImageError
from overlay.images import Image
from overlay.store import Store, write_json_atomic

_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"


def chain_ids(diff_ids: list[str]) -> list[str]:
    chain: list[str] = []
    for diff_id in diff_ids:
        if not chain:
            chain.append(diff_id)
        else:
            chain.append("sha256:" + hashlib.sha256(f"{chain[-1]} {diff_id}".encode()).hexdigest())
    return chain


def _record_path(store: Store, chain_id: str) -> str:
    return store.path("layers", digest_mod.hex_of(chain_id) + ".json")


def record(store: Store, chain_id: str) -> dict | None:
    try:
        with open(_record_path(store, chain_id)) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def directory(store: Store, chain_id: str) -> str:
    """The unpacked layer's directory, l/<id>."""
    rec = record(store, chain_id)
    if rec is None:
        raise ImageError(f"layer {chain_id}: not unpacked in the store {store.root}")
    return store.path("l", rec["dir"])


def ensure_unpacked(store: Store, image: Image,
                    report: Callable[[str, str], None] | None = None) -> list[str]:
    """Unpacks the image's layers that no earlier image did; returns the chain IDs, bottom
    first. Call it while holding store.adding()."""
    chain = chain_ids(image.diff_ids)
    for layer, chain_id in zip(image.layers, chain):
        if record(store, chain_id) is not None:
            continue
        with store.lock("layer-" + digest_mod.hex_of(chain_id)):
            if record(store, chain_id) is not None:
                continue  # a concurrent pull unpacked it while we waited
            if report:
                report(layer.digest, "unpacking")
            _unpack_one(store, layer.digest, layer.diff_id, chain_id)
            if report:
                report(layer.digest, "unpacked")
    return chain


def _unpack_one(store: Store, blob: str, diff_id: str, chain_id: str) -> None:
    import shutil

    from overlay import unpack as unpack_mod  # tarfile and gzip: only when there is work

    dir_id = _new_dir(store)
    path = store.path("l", dir_id)
    started = time.monotonic()
    try:
        with open(store.blob_path(blob), "rb") as f:
            size = unpack_mod.unpack(f, path, diff_id, f"layer {blob}")
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    write_json_atomic(_record_path(store, chain_id), {
        "chainId": chain_id, "diffId": diff_id, "blob": blob, "dir": dir_id, "size": size,
        "unpackSeconds": round(time.monotonic() - started, 3)})


def _new_dir(store: Store) -> str:
    """A fresh directory under l/ with a 10-character name (docker's overlay2 keeps short
    names for the same reason: the lowerdir option of a deep image must fit in one page)."""
    while True:
        name = "".join(_ID_ALPHABET[b % 32] for b in os.urandom(10))
        try:
            os.mkdir(store.path("l", name), 0o755)
            return name
        except FileExistsError:
            continue
