"""The watch cache answers exactly as the SQLite storage it wraps (issue 28): lists now and at
past revisions, paged, watch replays, 410 past the backend's compaction. No server, no root."""
from __future__ import annotations

import random

import pytest

from apiserver.storage import Compacted, KeyExists, KeyNotFound, RevisionConflict
from apiserver.storage.sqlite import SQLiteStorage
from apiserver.watchcache import WatchCache


def random_writes(storage, rng: random.Random, count: int) -> None:
    for _ in range(count):
        key = f"/registry/{rng.choice('ab')}/{rng.randrange(40):02}"
        value = str(rng.random()).encode()
        try:
            match rng.randrange(3):
                case 0:
                    storage.create(key, value)
                case 1:
                    storage.update(key, value, 0)
                case _:
                    storage.delete(key)
        except (KeyExists, KeyNotFound):
            continue


def paged(storage, prefix: str, revision: int, limit: int) -> list:
    out, after = [], ""
    while True:
        page, at = storage.list(prefix, after=after, limit=limit, revision=revision)
        assert at == revision
        out += page
        if len(page) < limit:
            return out
        after = page[-1].key


def test_cache_lists_and_replays_as_the_backend(tmp_path):
    rng = random.Random(28)
    backend = SQLiteStorage(str(tmp_path / "db"))
    random_writes(backend, rng, 100)  # written before the cache: only the backend has them
    cache = WatchCache(backend, history=300)
    try:
        seen = []
        cache.subscribe(seen.append)
        start = cache.current_revision()
        random_writes(cache, rng, 600)
        now = cache.current_revision()
        assert [e.rev for e in seen] == sorted({e.rev for e in seen})
        assert seen == list(backend.events_since(start))
        assert cache.list("/registry/") == backend.list("/registry/")
        for revision in range(1, now + 1):
            for prefix in ("/registry/", "/registry/a/"):
                want = backend.list(prefix, revision=revision)
                assert cache.list(prefix, revision=revision) == want
                assert paged(cache, prefix, revision, 7) == want[0]
                assert list(cache.events_since(revision, prefix)) == list(
                    backend.events_since(revision, prefix))
        assert cache.get("/registry/a/01") == backend.get("/registry/a/01")
        fresh = cache.create("/registry/c/fresh", b"1")
        assert cache.get("/registry/c/fresh") == fresh  # read back at once
        with pytest.raises(RevisionConflict):
            cache.update("/registry/c/fresh", b"2", fresh.rev - 1)
        now = cache.current_revision()
        cache.compact(now - 5)
        with pytest.raises(Compacted):
            cache.events_since(now - 6)
        with pytest.raises(Compacted):
            cache.list("/registry/", revision=now - 6)
        assert cache.list("/registry/", revision=now - 5) == backend.list("/registry/",
                                                                         revision=now - 5)
    finally:
        cache.close()
