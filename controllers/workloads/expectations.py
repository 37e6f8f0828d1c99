"""ControllerExpectations, as kube's UIDTrackingControllerExpectations: a controller that asked
for N creations or for the deletion of some pods does not act on the same key again until its
informer has seen them (or 5 minutes pass), so that a stale cache does not make it create or
delete twice. Deletions are tracked by pod key, so that the update that sets a
deletionTimestamp and the DELETE event count once."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from kubeapi.informer import object_key

EXPECTATIONS_TIMEOUT = 300.0


@dataclass
class _Expectation:
    adds: int = 0
    deletes: set[str] = field(default_factory=set)
    at: float = field(default_factory=time.monotonic)


class Expectations:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, _Expectation] = {}

    def satisfied(self, key: str) -> bool:
        with self._lock:
            exp = self._items.get(key)
            if exp is None:
                return True
            return (exp.adds <= 0 and not exp.deletes) or \
                time.monotonic() - exp.at > EXPECTATIONS_TIMEOUT

    def expect_creations(self, key: str, count: int) -> None:
        with self._lock:
            self._items[key] = _Expectation(adds=count)

    def expect_deletions(self, key: str, pod_keys: list[str]) -> None:
        with self._lock:
            self._items[key] = _Expectation(deletes=set(pod_keys))

    def creation_observed(self, key: str) -> None:
        with self._lock:
            exp = self._items.get(key)
            if exp is not None:
                exp.adds -= 1

    def deletion_observed(self, key: str, pod_key: str) -> None:
        with self._lock:
            exp = self._items.get(key)
            if exp is not None:
                exp.deletes.discard(pod_key)

    def pod_observed(self, key: str, pod: dict, deleted: bool) -> None:
        """An event of a pod the owner `key` controls: its deletion when it is gone or going,
        else its creation."""
        if deleted or pod["metadata"].get("deletionTimestamp"):
            self.deletion_observed(key, object_key(pod))
        else:
            self.creation_observed(key)

    def forget(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)
