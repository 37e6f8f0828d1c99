"""Writing blobs into the store: to a file under ingest/, fsync, verify the digest, rename.

A crash or a wrong byte never leaves a corrupt blob under blobs/: only a verified file is renamed
there. A download of a known digest keeps its partial file (ingest/<hex>.partial) so that the
next attempt can resume it with a Range request.
"""
from __future__ import annotations

import hashlib
import os
import secrets
from typing import BinaryIO

from overlay import digest as digest_mod
from overlay.errors import ImageError
from overlay.store import Store, fsync_dir

_CHUNK = 1 << 20


class BlobWriter:
    """Appends to a partial blob; `commit` verifies and publishes it.

    `resumable` (needs `expected`): the partial file is named after the digest, continues what
    an earlier attempt wrote, and survives `close` without commit; use it under the store's lock
    for that blob. Otherwise the temporary file is private and `close` removes it.
    """

    def __init__(self, store: Store, expected: str | None = None, resumable: bool = False) -> None:
        self.store = store
        self.expected = digest_mod.check(expected) if expected else None
        self.resumable = resumable and self.expected is not None
        self._hash = hashlib.sha256()
        if self.resumable:
            self.path = store.path("ingest", digest_mod.hex_of(self.expected) + ".partial")
        else:
            self.path = store.path("ingest", "tmp-" + secrets.token_hex(8))
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self.offset = 0
        self._rehash()

    def _rehash(self) -> None:
        while chunk := os.read(self._fd, _CHUNK):
            self._hash.update(chunk)
            self.offset += len(chunk)

    def restart(self) -> None:
        """Drops what was written (the server would not resume it)."""
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        self._hash = hashlib.sha256()
        self.offset = 0

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self._hash.update(data)
        self.offset += len(data)

    def copy_from(self, stream: BinaryIO) -> None:
        while chunk := stream.read(_CHUNK):
            self.write(chunk)

    def commit(self, size: int | None = None) -> str:
        """Verifies and publishes the blob; returns its digest. A mismatch deletes the partial
        file and raises."""
        actual = "sha256:" + self._hash.hexdigest()
        problem = None
        if size is not None and self.offset != size:
            problem = f"size {self.offset} is not the expected {size}"
        elif self.expected and actual != self.expected:
            problem = f"content has digest {actual}"
        if problem:
            self.discard()
            raise ImageError(f"blob {self.expected or actual}: {problem}: refused")
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1
        os.rename(self.path, self.store.blob_path(actual))
        fsync_dir(os.path.dirname(self.store.blob_path(actual)))
        return actual

    def close(self) -> None:
        """Stops writing; a named partial file stays for a later resume, a private one goes."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            if not self.resumable:
                _unlink(self.path)

    def discard(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        _unlink(self.path)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def put_stream(store: Store, stream: BinaryIO, expected: str | None = None,
               size: int | None = None) -> str:
    """Stores a blob read from `stream`; returns its digest (verified against `expected`)."""
    if expected and store.has_blob(expected):
        return expected
    with BlobWriter(store, expected) as w:
        w.copy_from(stream)
        return w.commit(size)


def put_bytes(store: Store, data: bytes, expected: str | None = None) -> str:
    import io

    return put_stream(store, io.BytesIO(data), expected, len(data))


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
