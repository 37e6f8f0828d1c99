"""The image service on overlay's store, the one `pycontainer image` uses, so an image imported
there runs with imagePullPolicy Never. Pulls go through overlay's registry client, one at a time
unless serializeImagePulls is false."""
from __future__ import annotations

import contextlib
import threading

from overlay import gc as image_gc, images, pull, reference
from overlay.errors import ImageError
from overlay.store import Store

from cri.api import CRIError, Image, ImageNotFound, ImageService


def repo_digest(record: images.Image) -> str:
    """name@manifest-digest: what a container's imageID shows."""
    ref = reference.parse(record.name)
    return f"{ref.registry}/{ref.repository}@{record.digest}"


class Images(ImageService):
    def __init__(self, store_root: str, serialize_pulls: bool = True) -> None:
        self.store = Store(store_root)
        self._pull_lock = threading.Lock() if serialize_pulls else None

    def record(self, ref: str) -> images.Image:
        """The store's record for ref; ImageNotFound if absent, CRIError if ref is invalid."""
        try:
            reference.parse(ref)
        except ImageError as e:
            raise CRIError(str(e)) from None
        try:
            return images.load(self.store, ref)
        except ImageError as e:
            raise ImageNotFound(str(e)) from None

    def config(self, record: images.Image) -> dict:
        return self.store.read_json_blob(record.config, "image config")

    def pull_image(self, ref: str, auth_file: str | None = None, insecure: bool = False) -> str:
        """auth_file: a docker config.json with the registry's credentials (default: docker's);
        insecure: the registry may serve plain HTTP or an unverified certificate."""
        lock = self._pull_lock or contextlib.nullcontext()
        with lock:
            try:
                record = pull.pull(self.store, ref, insecure=insecure, auth_file=auth_file)
            except (ImageError, OSError) as e:
                raise CRIError(str(e)) from None
        return repo_digest(record)

    def image_status(self, ref: str) -> Image | None:
        try:
            record = self.record(ref)
        except ImageNotFound:
            return None
        user = ((self.config(record).get("config") or {}).get("User") or "").split(":")[0]
        uid, username = (int(user), "") if user.isdigit() else (None, user)
        same = [r for r in images.list_all(self.store) if r.config == record.config]
        image = _image(same or [record])
        image.uid, image.username = uid, username
        return image

    def remove_image(self, ref: str) -> None:
        try:
            images.remove(self.store, ref)
        except ImageError:
            return
        image_gc.collect(self.store)

    def list_images(self) -> list[Image]:
        """One per image ID with every name it has, as containerd lists them (and the kubelet
        shows them in a Node's status.images)."""
        by_id: dict[str, list[images.Image]] = {}
        for record in images.list_all(self.store):
            by_id.setdefault(record.config, []).append(record)
        return [_image(records) for records in by_id.values()]


def _image(records: list[images.Image]) -> Image:
    """The image the records name (all of one config digest)."""
    return Image(id=records[0].config, repo_tags=sorted({r.name for r in records}),
                 repo_digests=sorted({repo_digest(r) for r in records}), size=records[0].size)
