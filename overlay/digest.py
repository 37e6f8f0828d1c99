"""Content digests ("sha256:<64 hex>"): parsing, hashing readers."""
from __future__ import annotations

import hashlib
import io
import re

from overlay.errors import ImageError

_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")


def check(digest: str, what: str = "digest") -> str:
    """Returns `digest` if it is a sha256 digest; the only algorithm registries use."""
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
        algorithm = digest.partition(":")[0] if isinstance(digest, str) else ""
        if algorithm and algorithm != "sha256" and ":" in digest:
            raise ImageError(f"{what} {digest}: unsupported algorithm {algorithm} (only sha256)")
        raise ImageError(f"{what} {digest!r}: not a sha256 digest")
    return digest


def hex_of(digest: str) -> str:
    return check(digest)[len("sha256:"):]


def of_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def short(digest: str) -> str:
    return digest.partition(":")[2][:12]


class HashingReader:
    """A read-only stream that hashes what passes through it (e.g. a layer's diff ID while it
    is unpacked)."""

    def __init__(self, raw: io.BufferedIOBase) -> None:
        self._raw = raw
        self._hash = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self._hash.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass

    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()
