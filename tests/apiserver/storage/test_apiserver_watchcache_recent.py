"""The watch cache's admission reads (get_recent, issue 28): a key the cache holds is answered
from it without reaching for the backend's newest revision (in a worker, a round trip to the
owner); a key it does not hold is read consistently, waiting for the feed as get does. No
server, no root."""
from __future__ import annotations

import threading

from apiserver.storage import Event
from apiserver.storage.sqlite import SQLiteStorage
from apiserver.watchcache import WatchCache


class LaggingFeed(SQLiteStorage):
    """SQLite whose subscribers get its changes only when released, as a worker's feed lags
    the owner's commits; counts how often the newest revision is asked for."""

    def __init__(self, path: str):
        super().__init__(path)
        self.held: list[Event] = []
        self.revision_asks = 0
        self._callbacks = []

    def subscribe(self, callback) -> None:
        self._callbacks.append(callback)
        super().subscribe(lambda event: self.held.append(event))

    def release(self) -> None:
        held, self.held = self.held, []
        for event in held:
            for callback in self._callbacks:
                callback(event)

    def current_revision(self) -> int:
        self.revision_asks += 1
        return super().current_revision()


def test_recent_reads_answer_from_the_cache_and_look_up_what_it_lacks(tmp_path):
    backend = LaggingFeed(str(tmp_path / "db"))
    cache = WatchCache(backend)
    try:
        backend.create("/registry/namespaces/a", b'{"v":1}')
        backend.release()
        backend.update("/registry/namespaces/a", b'{"v":2}', 0)  # not fed yet
        asks = backend.revision_asks
        # held: the cached state (as new as the key's creation), no wait for the newest
        assert cache.get_recent("/registry/namespaces/a").value == b'{"v":1}'
        assert backend.revision_asks == asks

        backend.create("/registry/namespaces/b", b'{"v":1}')  # created elsewhere, not fed
        feeder = threading.Timer(0.2, backend.release)
        feeder.start()
        try:
            # not held: looked up consistently, so it waits for the feed and finds it
            assert cache.get_recent("/registry/namespaces/b").value == b'{"v":1}'
        finally:
            feeder.join()
        assert backend.revision_asks > asks
        assert cache.get_recent("/registry/namespaces/a").value == b'{"v":2}'
        assert cache.get_recent("/registry/namespaces/none") is None
    finally:
        cache.close()


def test_backends_without_a_cache_read_recent_as_get(tmp_path):
    backend = SQLiteStorage(str(tmp_path / "db"))
    try:
        backend.create("/registry/a", b"1")
        assert backend.get_recent("/registry/a") == backend.get("/registry/a")
        assert backend.get_recent("/registry/b") is None
    finally:
        backend.close()
