"""Records on disk under --root-dir, one JSON file per object, so that a kubelet started again
(after SIGKILL, an upgrade) rebuilds what it had: <root>/<kind>/<id>/<kind-singular>.json.

Written by rename, so a reader sees a whole record or the previous one. Not fsync'd: a record
only has to outlive the kubelet process (a machine crash ends the containers too, and garbage
collection removes what their records describe)."""
from __future__ import annotations

import json
import os
import shutil


class Records:
    """The records of one kind: <root>/<id>/<name>, each in the object's own directory (which
    also holds the object's other files: a bundle, pinned namespaces)."""

    def __init__(self, root: str, name: str) -> None:
        self.root = root
        self.name = name
        os.makedirs(root, mode=0o700, exist_ok=True)

    def dir(self, object_id: str) -> str:
        return os.path.join(self.root, object_id)

    def create(self, object_id: str, record: dict) -> None:
        """The object's directory and its first record."""
        os.mkdir(self.dir(object_id), 0o700)
        self.save(object_id, record)

    def save(self, object_id: str, record: dict) -> None:
        path = os.path.join(self.root, object_id, self.name)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            # dumps, not dump: json.dump encodes in pure Python, dumps in C (3x faster)
            f.write(json.dumps(record, separators=(",", ":")))
        os.rename(tmp, path)

    def load_all(self) -> tuple[dict[str, dict], list[str]]:
        """({id: record}, ids of directories without a readable record: half-made objects)."""
        records, broken = {}, []
        for object_id in sorted(os.listdir(self.root)):
            try:
                with open(os.path.join(self.root, object_id, self.name)) as f:
                    records[object_id] = json.load(f)
            except (OSError, ValueError):
                broken.append(object_id)
        return records, broken

    def remove(self, object_id: str) -> None:
        """The object's directory and everything in it (no mount may remain below)."""
        shutil.rmtree(self.dir(object_id), ignore_errors=True)
