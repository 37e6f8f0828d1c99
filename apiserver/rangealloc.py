"""Which items of a range are taken, kept in storage as kube-apiserver keeps a RangeAllocation
(`/registry/ranges/serviceips`, `/registry/ranges/servicenodeports`): a JSON object naming the
range, with `data` the bitmap of taken offsets as a big-endian integer (Go's big.Int bytes).

Every change is a compare-and-swap on the revision the bitmap was read at, tried again on the
stored one when another server got in between, so any number of servers on one storage hand
out each item once. The bitmap in memory is a cache of the last one read or written: a change
to it is written only if the stored bitmap is still that one, and a change that leaves it as
it was is checked against the stored one."""
from __future__ import annotations

import base64
import json
import threading
from typing import Any, Callable, Protocol, TypeVar

from .storage import KeyExists, KeyNotFound, Record, RevisionConflict, Storage

T = TypeVar("T")

# Writes lost to other servers before giving up (each loss means another server allocated).
CAS_RETRIES = 64


class AllocationError(Exception):
    """Why an address or port cannot be had, in kube's words."""


def encode(range_text: str, taken: set[int]) -> bytes:
    bits = sum(1 << offset for offset in taken)
    data = bits.to_bytes((bits.bit_length() + 7) // 8, "big")
    return json.dumps({"kind": "RangeAllocation", "apiVersion": "v1",
                       "metadata": {}, "range": range_text,
                       "data": base64.b64encode(data).decode()}, separators=(",", ":")).encode()


def decode(value: bytes) -> tuple[str, set[int]]:
    obj = json.loads(value)
    bits = int.from_bytes(base64.b64decode(obj.get("data") or ""), "big")
    binary = bin(bits)[2:][::-1]
    return obj.get("range", ""), {i for i, bit in enumerate(binary) if bit == "1"} \
        if bits else set()


class Range(Protocol):
    """What a range (ipalloc.IPAllocator, portalloc.PortAllocator) tells the stored bitmap."""
    key: str

    def offset(self, item: Any) -> int | None: ...
    def allocate(self, item: Any, taken: set[int]) -> None: ...
    def allocate_next(self, taken: set[int]) -> Any: ...


class StoredRange:
    """A range's allocations, as the service store takes and gives back items."""

    def __init__(self, storage: Storage, items: Range):
        self._storage = storage
        self.items = items
        self._key = items.key
        self._range = str(items)
        self._taken: set[int] = set()
        self._rev = 0  # revision of the stored bitmap the cache holds; 0: none stored yet
        self._lock = threading.Lock()

    def _load(self, record: Record | None) -> None:
        """The cache becomes `record`; a bitmap of another range (the flag changed) counts as
        empty, and the next write replaces it."""
        if record is None:
            self._taken, self._rev = set(), 0
            return
        stored_range, taken = decode(record.value)
        self._taken = taken if stored_range == self._range else set()
        self._rev = record.rev

    def allocate(self, item: Any) -> None:
        self._change(lambda taken: self.items.allocate(item, taken))

    def allocate_next(self) -> Any:
        return self._change(self.items.allocate_next)

    def mark(self, items: set) -> None:
        """Takes the items stored Services hold (at start): a bitmap that missed one, or a
        range that changed, never hands them out again."""
        offsets = {o for o in map(self.items.offset, items) if o is not None}
        self._change(lambda taken: taken.update(offsets))

    def release(self, item: Any) -> None:
        offset = self.items.offset(item)
        if offset is not None:
            self._change(lambda taken: taken.discard(offset))

    def free_leaks(self, held: set, suspects: set[int]) -> set[int]:
        """One round of kube's repair: frees the offsets that `held` (what the Services hold,
        read before) lacks and that were suspects of the round before too, as a server that
        died between reserving and writing leaves them; a reservation in flight lasts one
        write, not a round. Returns this round's suspects."""
        kept = {o for o in map(self.items.offset, held) if o is not None}

        def free(taken: set[int]) -> set[int]:
            leaked = taken - kept
            taken -= leaked & suspects
            return leaked - suspects
        return self._change(free)

    def _change(self, fn: Callable[[set[int]], T]) -> T:
        """Applies fn to the taken offsets (it edits the set it is given and returns what the
        caller gets) and stores the result. fn raising AllocationError on the cache is asked
        again on the stored bitmap, which another server may have changed."""
        with self._lock:
            fresh = False
            for _ in range(CAS_RETRIES):
                taken = set(self._taken)
                try:
                    result = fn(taken)
                except AllocationError:
                    if fresh:
                        raise
                    self._load(self._storage.get(self._key))
                    fresh = True
                    continue
                if taken == self._taken and self._rev:
                    if fresh:
                        return result
                    # A release another server's allocation left out of this cache changes
                    # nothing here; only the stored bitmap can tell whether it is a no-op.
                    self._load(self._storage.get(self._key))
                    fresh = True
                    continue
                value = encode(self._range, taken)
                try:
                    if self._rev:
                        record = self._storage.update(self._key, value, self._rev)
                    else:
                        record = self._storage.create(self._key, value)
                except RevisionConflict as e:
                    self._load(e.current)
                except (KeyExists, KeyNotFound):
                    self._load(self._storage.get(self._key))
                else:
                    self._taken, self._rev = taken, record.rev
                    return result
                fresh = True
            raise AllocationError(f"{self._key}: lost {CAS_RETRIES} writes in a row to other "
                                  "servers")
