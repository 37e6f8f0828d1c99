"""The storage interface: a key/value store with a revision log (the etcd v3 model).

Every write gets the next revision of one global counter; an object's resourceVersion is the
revision of its last write. The log keeps enough history to list at a past revision (for
limit/continue) and to replay changes after a revision (for watch), until it is compacted.
`sqlite.SQLiteStorage` implements it in one file; an etcd v3 backend maps one to one onto
Range (with revision), Txn (compare mod_revision, put/delete), Watch (start_revision) and
Compact, and would call the subscribers from its watch stream.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True, slots=True)
class Record:
    key: str
    rev: int          # revision of the last write to this key: the object's resourceVersion
    value: bytes


@dataclass(frozen=True, slots=True)
class Event:
    type: str         # "ADDED" | "MODIFIED" | "DELETED"
    key: str
    rev: int
    value: bytes      # the new value; for DELETED the last value before deletion
    prev: bytes | None  # the value before this write (None for ADDED)


class StorageError(Exception):
    pass


class KeyExists(StorageError):
    pass


class KeyNotFound(StorageError):
    pass


class RevisionConflict(StorageError):
    """The key's current revision is not the one the caller based its write on."""

    def __init__(self, current: Record | None):
        super().__init__("revision conflict")
        self.current = current


class Compacted(StorageError):
    """The requested revision is older than the oldest one the log still holds."""

    def __init__(self, requested: int, compacted: int):
        super().__init__(f"revision {requested} is compacted (oldest kept: {compacted})")
        self.requested = requested
        self.compacted = compacted


class Storage(abc.ABC):
    """What the registry needs from a backend. Values are opaque bytes; keys sort as strings."""

    @abc.abstractmethod
    def get(self, key: str) -> Record | None: ...

    def get_recent(self, key: str) -> Record | None:
        """get, where any state of the key at least as new as its creation will do (admission's
        reads, which kube serves from its informers' caches): a cache may answer from what it
        holds without first reaching the newest revision."""
        return self.get(key)

    @abc.abstractmethod
    def list(self, prefix: str, *, after: str = "", limit: int = 0,
             revision: int = 0) -> tuple[list[Record], int]:
        """Records under prefix with key > after, at `revision` (0: now), and that revision.

        Raises Compacted when `revision` is no longer held."""

    @abc.abstractmethod
    def create(self, key: str, value: bytes) -> Record:
        """Raises KeyExists."""

    @abc.abstractmethod
    def update(self, key: str, value: bytes, expected_rev: int) -> Record:
        """Raises KeyNotFound, or RevisionConflict when the key is no longer at expected_rev."""

    @abc.abstractmethod
    def delete(self, key: str, expected_rev: int = 0) -> Record:
        """Removes key and returns its last record at the delete's revision. expected_rev 0: any."""

    @abc.abstractmethod
    def events_since(self, revision: int, prefix: str = "") -> list[Event]:
        """Changes after `revision`, oldest first. Raises Compacted."""

    @abc.abstractmethod
    def current_revision(self) -> int: ...

    @abc.abstractmethod
    def compacted_revision(self) -> int: ...

    @abc.abstractmethod
    def compact(self, revision: int) -> None:
        """Forgets history older than revision (etcd's Compact)."""

    @abc.abstractmethod
    def subscribe(self, callback: Callable[[Event], None]) -> None:
        """Calls callback with every committed change, in revision order, after it is durable."""

    def on_reset(self, callback: Callable[[list[Record], int], None]) -> None:
        """Calls callback(every record, revision) when the changes given to subscribers skipped
        some (etcd compacted them before its watch delivered them): what a subscriber keeps
        starts again from that list, and changes after that revision follow, as kube's
        reflector relists. A backend that gives every change never calls it."""

    @abc.abstractmethod
    def close(self) -> None: ...
