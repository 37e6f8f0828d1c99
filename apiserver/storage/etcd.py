"""Storage on etcd v3, as kube-apiserver's etcd3 store keeps it.

Keys are kube-apiserver's (etcd_keys: `/registry/deployments/<ns>/<name>`,
`/registry/minions/<name>` ..., `/registry` being --etcd-prefix), values the objects' JSON as
kube-apiserver's with --storage-media-type=application/json, so that both serve one etcd; a
record's revision is etcd's mod_revision, so resourceVersions are etcd revisions. Creates are a
Txn that succeeds only while the key's version is 0, updates and deletes one that compares
mod_revision with the revision the caller read. Subscribers are fed from one etcd watch, so
every server on the same etcd sees every server's writes; it watches every key (and passes on
those under the prefix) so that it passes every revision, which current_revision waits for: a
cache fed by it then serves reads as consistent as etcd's own (see current_revision). History for a
watch from a resourceVersion comes from an etcd watch from that revision; lists at a revision
are ranges at it. A compactor every --etcd-compaction-interval compacts to the revision it saw
one interval before, coordinating with the other servers through `compact_rev_key` as
kube-apiserver's compactor does, so several servers compact once per interval between them.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable

from ..resources import RESOURCES
from . import (Compacted, Event, KeyExists, KeyNotFound, Record, RevisionConflict, Storage,
               StorageError)
from .etcd_client import (ALL_KEYS, CALL_TIMEOUT, DELETE, EtcdClient, EtcdConfig, EtcdError,
                          compare_mod, compare_version, op_delete, op_get, op_put, prefix_end)
from .etcd_keys import REGISTRY, KeyLayout
from .etcd_migration import migrate
from .etcdpb import rpc_pb2

log = logging.getLogger(__name__)

# kube-apiserver's key (outside the prefix, shared by every server of the cluster): its value
# is the revision the last compaction kept, its version counts compactions.
COMPACT_REV_KEY = b"compact_rev_key"
DEFAULT_COMPACTION_INTERVAL = 300.0
# How long a server waits for a lost watch stream before opening it again.
RESUBSCRIBE_SECONDS = 0.5
STARTUP_TIMEOUT = 10.0
# Keys per Range of a list without a limit: ~3 MB of pods, far under the 64 MiB a message holds.
LIST_CHUNK = 1000


def _record_key(record: Record) -> str:
    return record.key


class EtcdStorage(Storage):
    def __init__(self, config: EtcdConfig, prefix: str = REGISTRY,
                 compaction_interval: float = DEFAULT_COMPACTION_INTERVAL):
        self._keys = KeyLayout(prefix, [(r.group, r.plural) for r in RESOURCES])
        self._client = EtcdClient(config)
        try:
            # Reaches a member (or fails within STARTUP_TIMEOUT): bad flags end here.
            head = self._client.range(COMPACT_REV_KEY, timeout=STARTUP_TIMEOUT)
        except EtcdError as e:
            self._client.close()
            raise EtcdError(f"--etcd-servers: no answer from {','.join(config.servers)} in "
                            f"{STARTUP_TIMEOUT:g}s ({e.details})") from None
        try:
            # What an older pyapiserver left under its own key layout moves first, before the
            # revision that feeding subscribers starts from.
            if migrate(self._client, prefix, self._keys,
                       [(r.group, r.plural, r.namespaced) for r in RESOURCES]):
                head = self._client.range(COMPACT_REV_KEY)
        except BaseException:
            self._client.close()
            raise
        self._fed = head.header.revision  # the newest change under the prefix fed, or the start
        # The feed has passed every revision (of any key) up to here; notified as it moves.
        self._seen = head.header.revision
        self._progress = threading.Condition()
        self._compacted = int(head.kvs[0].value) if head.kvs else 0
        self._subscribers: list[Callable[[Event], None]] = []
        self._resets: list[Callable[[list[Record], int], None]] = []
        self._stop = threading.Event()
        self._stream_lock = threading.Lock()
        self._streams: set = set()
        self._threads: list[threading.Thread] = []
        if compaction_interval > 0:
            self._spawn(self._compact_loop, "etcd-compactor", compaction_interval)

    def _ekey(self, key: str) -> bytes:
        return self._keys.etcd_key(key)

    def _skey(self, ekey: bytes) -> str:
        return self._keys.registry_key(ekey)

    def _canonical(self, ekey: bytes) -> bool:
        """Whether ekey is where this server keeps its registry key, not a key of the old
        layout that names the same object (`nodes/x` beside kube's `minions/x`): the
        migration's Txns put one and delete the other at one revision, and a cache that took
        both as changes of one key would lose the object."""
        return self._ekey(self._skey(ekey)) == ekey

    # reads

    def get(self, key: str) -> Record | None:
        resp = self._client.range(self._ekey(key))
        if not resp.kvs:
            return None
        kv = resp.kvs[0]
        return Record(key, kv.mod_revision, kv.value)

    def list(self, prefix: str, *, after: str = "", limit: int = 0,
             revision: int = 0) -> tuple[list[Record], int]:
        """Without a limit, in Ranges of LIST_CHUNK keys at one revision: the watch cache's
        first list of everything would outgrow a gRPC message."""
        low = self._ekey(prefix)
        end = prefix_end(low)
        if after:
            low = max(low, self._ekey(after) + b"\x00")
        kvs: list = []
        while True:
            try:
                resp = self._client.range(low, end, limit=limit or LIST_CHUNK, revision=revision)
            except EtcdError as e:
                if "compacted" in str(e):
                    raise Compacted(revision, self._compacted_now()) from e
                if "future revision" in str(e) and not kvs:  # no member has it yet: list now
                    return self.list(prefix, after=after, limit=limit)
                raise
            revision = revision or resp.header.revision
            kvs.extend(resp.kvs)
            if limit or not resp.more:
                break
            low = resp.kvs[-1].key + b"\x00"
        records = [Record(self._skey(kv.key), kv.mod_revision, kv.value) for kv in kvs
                   if self._canonical(kv.key)]
        # Over several resources etcd's order is not the registry's (`minions/` holds nodes):
        # the watch cache's list of everything bisects in the registry's.
        records.sort(key=_record_key)
        return records, revision

    def _compacted_now(self) -> int:
        head = self._client.range(COMPACT_REV_KEY)
        if head.kvs:
            self._compacted = max(self._compacted, int(head.kvs[0].value))
        return self._compacted

    def events_since(self, revision: int, prefix: str = "") -> list[Event]:
        now = self._client.range(COMPACT_REV_KEY, count_only=True).header.revision
        if revision >= now:
            return []
        # Every revision is a write to some key: watching all keys from revision+1 reaches
        # `now` for sure, where a watch of the prefix alone might never say it got there.
        want = self._ekey(prefix or REGISTRY + "/")
        events: list[Event] = []
        stream = self._client.watch(b"\x00", ALL_KEYS, revision + 1, timeout=CALL_TIMEOUT)
        try:
            for resp in stream:
                if resp.compact_revision:
                    self._compacted = max(self._compacted, resp.compact_revision)
                    raise Compacted(revision, resp.compact_revision)
                if resp.canceled:
                    raise StorageError(f"etcd cancelled a watch: {resp.cancel_reason}")
                for ev in resp.events:
                    if ev.kv.key.startswith(want) and self._canonical(ev.kv.key):
                        events.append(self._event(ev))
                if resp.events and resp.events[-1].kv.mod_revision >= now:
                    break
        finally:
            stream.cancel()
        return [e for e in events if e.rev <= now]

    def _event(self, ev) -> Event:
        kv, prev = ev.kv, (ev.prev_kv if ev.HasField("prev_kv") else None)
        key = self._skey(kv.key)
        if ev.type == DELETE:
            last = prev.value if prev is not None else b"{}"
            return Event("DELETED", key, kv.mod_revision, last, last)
        if kv.create_revision == kv.mod_revision:
            return Event("ADDED", key, kv.mod_revision, kv.value, None)
        return Event("MODIFIED", key, kv.mod_revision, kv.value,
                     prev.value if prev is not None else None)

    def current_revision(self) -> int:
        """With subscribers: the revision of the newest change they have been given, once the
        feed has passed etcd's revision at the time of the call (a linearizable read), so that
        a cache they keep holds every write acknowledged before the call, as kube-apiserver's
        consistent reads from its watch cache wait for. Without: etcd's revision."""
        now = self._client.range(COMPACT_REV_KEY, count_only=True).header.revision
        if not self._subscribers:
            return now
        with self._progress:
            if not self._progress.wait_for(lambda: self._seen >= now, CALL_TIMEOUT):
                raise StorageError(f"the etcd watch did not reach revision {now} in "
                                   f"{CALL_TIMEOUT:g}s (at {self._seen})")
            return self._fed

    def compacted_revision(self) -> int:
        return self._compacted

    # writes

    def create(self, key: str, value: bytes) -> Record:
        ekey = self._ekey(key)
        resp = self._client.txn([compare_version(ekey, 0)], [op_put(ekey, value)],
                                [op_get(ekey)])
        if not resp.succeeded:
            kvs = resp.responses[0].response_range.kvs
            # Our own bytes (they hold a fresh uid): a retried Txn whose first run committed.
            if kvs and kvs[0].value == value and kvs[0].version == 1:
                return Record(key, kvs[0].mod_revision, value)
            raise KeyExists(key)
        return Record(key, resp.header.revision, value)

    def _guard(self, ekey: bytes, expected_rev: int) -> rpc_pb2.Compare:
        if expected_rev:
            return compare_mod(ekey, expected_rev)
        return compare_version(ekey, 0, rpc_pb2.Compare.GREATER)

    def _failed(self, key: str, resp: rpc_pb2.TxnResponse) -> StorageError:
        kvs = resp.responses[0].response_range.kvs
        if not kvs:
            return KeyNotFound(key)
        return RevisionConflict(Record(key, kvs[0].mod_revision, kvs[0].value))

    def update(self, key: str, value: bytes, expected_rev: int) -> Record:
        ekey = self._ekey(key)
        resp = self._client.txn([self._guard(ekey, expected_rev)], [op_put(ekey, value)],
                                [op_get(ekey)])
        if not resp.succeeded:
            kvs = resp.responses[0].response_range.kvs
            if kvs and kvs[0].value == value:  # a retried Txn whose first run committed
                return Record(key, kvs[0].mod_revision, value)
            raise self._failed(key, resp)
        return Record(key, resp.header.revision, value)

    def delete(self, key: str, expected_rev: int = 0) -> Record:
        ekey = self._ekey(key)
        resp = self._client.txn([self._guard(ekey, expected_rev)], [op_delete(ekey)],
                                [op_get(ekey)])
        if not resp.succeeded:
            raise self._failed(key, resp)
        prev = resp.responses[0].response_delete_range.prev_kvs
        if not prev:  # deleted by another writer between compare and delete: cannot happen
            raise KeyNotFound(key)
        return Record(key, resp.header.revision, prev[0].value)

    # compaction

    def compact(self, revision: int) -> None:
        try:
            self._client.compact(revision)
        except EtcdError as e:
            if "compacted" not in str(e):
                raise
        self._compacted = max(self._compacted, revision)

    def _compact_loop(self, interval: float) -> None:
        version, rev = 0, 0
        while not self._stop.wait(interval):
            try:
                version, rev = self._compact_round(version, rev)
            except (EtcdError, StorageError) as e:
                log.warning("etcd compaction: %s", e)

    def _compact_round(self, version: int, rev: int) -> tuple[int, int]:
        """kube-apiserver's compactor: whoever moves compact_rev_key from the version it saw
        compacts at the revision it saw one interval ago; the others learn the new version."""
        resp = self._client.txn([compare_version(COMPACT_REV_KEY, version)],
                                [op_put(COMPACT_REV_KEY, str(rev).encode())],
                                [op_get(COMPACT_REV_KEY)])
        now = resp.header.revision
        if not resp.succeeded:
            kv = resp.responses[0].response_range.kvs[0]
            self._compacted = max(self._compacted, int(kv.value))
            return kv.version, now
        if rev:
            self.compact(rev)
        return version + 1, now

    # the watch feed

    def subscribe(self, callback: Callable[[Event], None]) -> None:
        self._subscribers.append(callback)
        if len(self._subscribers) == 1:
            self._spawn(self._feed, "etcd-watch")

    def on_reset(self, callback: Callable[[list[Record], int], None]) -> None:
        self._resets.append(callback)

    def _feed(self) -> None:
        while not self._stop.is_set():
            stream = self._client.watch(b"\x00", ALL_KEYS, self._seen + 1)
            with self._stream_lock:
                self._streams.add(stream)
            try:
                self._pump(stream)
            except EtcdError as e:
                if not self._stop.is_set():
                    log.warning("etcd watch lost, resuming at %d: %s", self._seen + 1, e)
            finally:
                with self._stream_lock:
                    self._streams.discard(stream)
                stream.cancel()
            self._stop.wait(RESUBSCRIBE_SECONDS)

    def _pump(self, stream) -> None:
        want = self._ekey(REGISTRY + "/")
        for resp in stream:
            if resp.compact_revision:
                log.warning("etcd watch: revisions up to %d compacted before delivery; "
                            "relisting", resp.compact_revision)
                self._relist()
                return
            if resp.canceled:
                return
            for ev in resp.events:
                if ev.kv.key.startswith(want) and self._canonical(ev.kv.key):
                    event = self._event(ev)
                    for callback in self._subscribers:
                        callback(event)
                    self._fed = event.rev
            if resp.events:
                self._passed(resp.events[-1].kv.mod_revision)

    def _relist(self) -> None:
        """Changes the feed had not delivered are gone (the server was away from etcd longer
        than a compaction interval): subscribers start again from everything at etcd's
        revision now, and the feed resumes after it. An etcd error here ends the stream, and
        the feed's next try meets the compaction again and relists again."""
        records, revision = self.list("")
        for callback in self._resets:
            callback(records, revision)
        self._fed = revision
        self._passed(revision)

    def _passed(self, revision: int) -> None:
        with self._progress:
            self._seen = revision
            self._progress.notify_all()

    def _spawn(self, target: Callable, name: str, *args) -> None:
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def close(self) -> None:
        self._stop.set()
        with self._stream_lock:
            streams = list(self._streams)
        for stream in streams:
            stream.cancel()
        for t in self._threads:
            t.join(timeout=5)
        self._client.close()
