"""The one-time move of what an older pyapiserver wrote to etcd under its own key layout (the
registry's keys with --etcd-prefix for /registry: `apps/deployments/...`, `nodes/...`,
`services/<ns>/<name>`, `endpoints/...`) to kube-apiserver's (etcd_keys), run at start.

A guard key outside the prefix says where the move stands: absent (never looked), a marker of
the server moving now, or DONE. The first server to create it moves, renewing it after every
batch; the others wait for DONE, and take the move over only if the guard stops changing (its
mover died). The move is idempotent whoever runs it: one Txn per batch puts each object under
its new key and deletes the old one, only while the old key is still at the revision read and
the new one absent; a key that fails that is settled alone (an object already under its new key
wins, the old copy goes). Values are moved as they are; their resourceVersions become the
revision of the move. Old-layout servers still writing meanwhile are not supported."""
from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from .etcd_client import (EtcdClient, compare_mod, compare_version, op_delete, op_get, op_put,
                          prefix_end)
from .etcd_keys import REGISTRY, KeyLayout
from .etcdpb import rpc_pb2

log = logging.getLogger(__name__)

GUARD = b"pyapiserver-key-layout"  # + the prefix
DONE = b"kube-apiserver"
# Keys per Txn: two compares and two operations each, under etcd's --max-txn-ops (128).
BATCH = 50
STALL_SECONDS = 30.0
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class OldPrefix:
    """Where the old layout kept one resource, and how many path segments follow it (namespace
    and name, or name), which tells its keys from kube's sharing the prefix (`services/specs/`
    lies under the old `services/`)."""
    key: bytes
    depth: int


def old_prefixes(prefix: str, layout: KeyLayout,
                 resources: Iterable[tuple[str, str, bool]]) -> list[OldPrefix]:
    """resources: (group, plural, namespaced); only those whose key changed."""
    out = []
    for group, plural, namespaced in resources:
        ours = f"{group}/{plural}/" if group else f"{plural}/"
        old = f"{prefix.rstrip('/')}/{ours}".encode()
        if layout.etcd_key(f"{REGISTRY}/{ours}") != old:
            out.append(OldPrefix(old, 2 if namespaced else 1))
    return out


def migrate(client: EtcdClient, prefix: str, layout: KeyLayout,
            resources: Iterable[tuple[str, str, bool]],
            clock: Callable[[], float] = time.monotonic) -> int:
    """Moves old-layout keys, unless another server did or does; the number this call moved."""
    guard = GUARD + prefix.rstrip("/").encode()
    marker = f"moving: {socket.gethostname()} pid {os.getpid()}".encode()
    if not _claim(client, guard, marker, clock):
        return 0
    moved = 0
    for old in old_prefixes(prefix, layout, resources):
        moved += _move(client, old, prefix.rstrip("/").encode(), layout, guard, marker)
    client.txn([], [op_put(guard, DONE)], [])
    if moved:
        log.info("moved %d objects to kube-apiserver's etcd key layout", moved)
    return moved


def _claim(client: EtcdClient, guard: bytes, marker: bytes, clock: Callable[[], float]) -> bool:
    """True when this server is to move; False once the move is DONE."""
    seen_rev, seen_at = 0, clock()
    while True:
        resp = client.txn([compare_version(guard, 0)], [op_put(guard, marker)],
                          [op_get(guard)])
        if resp.succeeded:
            return True
        kvs = resp.responses[0].response_range.kvs
        if not kvs:
            continue  # deleted between compare and get
        if kvs[0].value == DONE:
            return False
        if kvs[0].mod_revision != seen_rev:
            seen_rev, seen_at = kvs[0].mod_revision, clock()
        elif clock() - seen_at > STALL_SECONDS and client.txn(
                [compare_mod(guard, seen_rev)], [op_put(guard, marker)], []).succeeded:
            log.warning("taking over the etcd key layout move of a server that stopped")
            return True
        time.sleep(POLL_SECONDS)


def _move(client: EtcdClient, old: OldPrefix, etcd_prefix: bytes, layout: KeyLayout,
          guard: bytes, marker: bytes) -> int:
    moved = 0
    start, end = old.key, prefix_end(old.key)
    while True:
        resp = client.range(start, end, limit=BATCH)
        if not resp.kvs:
            return moved
        batch = [kv for kv in resp.kvs if kv.key[len(old.key):].count(b"/") == old.depth - 1]
        pairs = [(kv, layout.etcd_key(REGISTRY + kv.key[len(etcd_prefix):].decode()))
                 for kv in batch]
        compares = [c for kv, new in pairs
                    for c in (compare_mod(kv.key, kv.mod_revision), compare_version(new, 0))]
        ops = [op for kv, new in pairs for op in (op_put(new, kv.value), op_delete(kv.key))]
        if pairs and client.txn(compares, ops, []).succeeded:
            moved += len(pairs)
        else:
            moved += sum(_move_one(client, kv.key, new) for kv, new in pairs)
        client.txn([], [op_put(guard, marker)], [])  # progress, for the servers waiting
        if not resp.more:
            return moved
        start = resp.kvs[-1].key + b"\x00"


def _move_one(client: EtcdClient, key: bytes, new: bytes) -> int:
    """1 when this call moved key's object, 0 when it found it gone or already moved."""
    while True:
        resp = client.range(key)
        if not resp.kvs:
            return 0
        kv = resp.kvs[0]
        if client.txn([compare_mod(key, kv.mod_revision), compare_version(new, 0)],
                      [op_put(new, kv.value), op_delete(key)], []).succeeded:
            return 1
        # The object is under its new key already (written since): the old copy goes.
        if client.txn([compare_mod(key, kv.mod_revision),
                       compare_version(new, 0, rpc_pb2.Compare.GREATER)],
                      [op_delete(key)], []).succeeded:
            return 0
