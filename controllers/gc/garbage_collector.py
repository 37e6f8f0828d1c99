"""The garbage collector, as kube's: objects whose ownerReferences all point to objects that
are gone are deleted, across every resource the server lists in discovery but events (an informer
each, with an index by owner uid; discovery is read again every 30 s, as kube's, to pick up
resources served later).

- Background (the default): when an owner is deleted, each dependent with no remaining live
  owner is deleted (with its own propagation: Foreground if it has the foregroundDeletion
  finalizer, Orphan if orphan, else Background). References to owners that are gone are removed
  from dependents that still have a live owner.
- Foreground: an owner being deleted with the foregroundDeletion finalizer (propagationPolicy
  Foreground) has its dependents deleted (Foreground for those that have dependents of their
  own); the finalizer is removed once no dependent with blockOwnerDeletion: true is left, and
  the API server then deletes the owner.
- Orphan: an owner being deleted with the orphan finalizer has the references to it removed from
  its dependents, then the finalizer.

An owner missing from the informer's cache is looked up with a GET before anything is deleted
(the cache may not have seen it yet); an owner of a kind the server does not serve counts as
present (nothing is deleted on a guess). Every deletion carries a uid precondition.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from kubeapi.informer import DeletedFinalStateUnknown, Informer, object_key, split_key
from kubeapi.status import ApiError
from kubeapi.workqueue import RateLimitingQueue

from ..context import ControllerContext
from . import discovery
from .discovery import Resource

log = logging.getLogger("garbage-collector-controller")

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
OWNER_INDEX = "gc-owner-uid"
# Not watched, as kube's DefaultIgnoredResources: many, short-lived, and never owners.
IGNORED = {("", "events"), ("events.k8s.io", "events")}
BLOCKED_RECHECK = 5.0  # seconds; a safety net beside the dependents' own delete events

GroupKind = tuple[str, str]


def _owner_uids(obj: dict) -> list[str]:
    return [r.get("uid", "") for r in (obj.get("metadata") or {}).get("ownerReferences") or []]


def _group(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def _finalizers(obj: dict) -> list[str]:
    return list(obj["metadata"].get("finalizers") or [])


@dataclass
class _Monitor:
    resource: Resource
    informer: Informer


class GarbageCollector:
    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.queue = RateLimitingQueue(name="garbage-collector")
        self._lock = threading.Lock()
        self._monitors: dict[GroupKind, _Monitor] = {}

    # -- start and discovery ----------------------------------------------------------------

    def start(self) -> None:
        self.sync_monitors()
        for i in range(self.ctx.options.concurrent_gc_syncs):
            threading.Thread(target=self._worker, name=f"gc-{i}", daemon=True).start()
        threading.Thread(target=self._rediscover, name="gc-discovery", daemon=True).start()

    def sync_monitors(self) -> None:
        """An informer for every deletable, listable, watchable resource not yet monitored."""
        try:
            found = discovery.resources(self.client)
        except ApiError as e:
            log.warning("discovery failed: %s", e.message)
            return
        for res in found:
            if (res.group, res.plural) in IGNORED:
                continue
            gk = (res.group, res.kind)
            with self._lock:
                if gk in self._monitors:
                    continue
            informer = self.ctx.informers.informer(res.path())
            try:
                informer.add_indexer(OWNER_INDEX, _owner_uids)
            except ValueError:
                pass  # the informer is shared and already indexed
            informer.add_event_handler(
                on_add=lambda obj, gk=gk: self._changed(gk, obj),
                on_update=lambda old, new, gk=gk: self._changed(gk, new),
                on_delete=lambda obj, gk=gk: self._deleted(gk, obj))
            with self._lock:
                self._monitors[gk] = _Monitor(res, informer)
            log.debug("monitoring %s", res.path())
        self.ctx.informers.start()

    def _rediscover(self) -> None:
        while not self.ctx.stop.wait(self.ctx.options.gc_discovery_period):
            self.sync_monitors()
        self.queue.shut_down()

    def _monitor(self, api_version: str, kind: str) -> _Monitor | None:
        with self._lock:
            return self._monitors.get((_group(api_version), kind))

    def _all_monitors(self) -> list[_Monitor]:
        with self._lock:
            return list(self._monitors.values())

    # -- events -----------------------------------------------------------------------------

    def _changed(self, gk: GroupKind, obj: dict) -> None:
        meta = obj["metadata"]
        if meta.get("ownerReferences"):
            self.queue.add(("dependent", gk, object_key(obj)))
            self._wake_deleting_owners(obj)
        if meta.get("deletionTimestamp") and {FOREGROUND, ORPHAN} & set(_finalizers(obj)):
            self.queue.add(("owner", gk, object_key(obj)))

    def _deleted(self, gk: GroupKind, obj: object) -> None:
        if isinstance(obj, DeletedFinalStateUnknown):
            obj = obj.obj
        for monitor, dependent in self.dependents(obj):
            key = (monitor.resource.group, monitor.resource.kind)
            self.queue.add(("dependent", key, object_key(dependent)))
        self._wake_deleting_owners(obj)

    def _wake_deleting_owners(self, obj: dict) -> None:
        """An owner waiting in foreground deletion looks again when a dependent changes."""
        for ref in obj["metadata"].get("ownerReferences") or []:
            monitor = self._monitor(ref.get("apiVersion", ""), ref.get("kind", ""))
            if monitor is None:
                continue
            ns = obj["metadata"].get("namespace", "") if monitor.resource.namespaced else ""
            key = f"{ns}/{ref.get('name')}" if ns else ref.get("name", "")
            owner = monitor.informer.store.get(key)
            if owner is not None and owner["metadata"].get("deletionTimestamp"):
                self.queue.add(("owner", (monitor.resource.group, monitor.resource.kind), key))

    def dependents(self, owner: dict) -> Iterator[tuple[_Monitor, dict]]:
        uid = owner["metadata"].get("uid", "")
        ns = owner["metadata"].get("namespace", "")
        for monitor in self._all_monitors():
            for dep in monitor.informer.store.by_index(OWNER_INDEX, uid):
                # A namespaced owner owns objects of its own namespace only.
                if not ns or dep["metadata"].get("namespace", "") == ns:
                    yield monitor, dep

    # -- workers ----------------------------------------------------------------------------

    def _worker(self) -> None:
        while True:
            item, shutdown = self.queue.get()
            if shutdown:
                return
            try:
                kind, gk, key = item
                with self._lock:
                    monitor = self._monitors.get(gk)
                if monitor is not None and monitor.informer.has_synced():
                    if kind == "dependent":
                        self.attempt_to_delete(monitor, key)
                    else:
                        self.process_deleting_owner(monitor, key)
                elif monitor is not None:
                    self.queue.add_after(item, 0.5)  # its cache is still listing
                self.queue.forget(item)
            except ApiError as e:
                log.warning("%s %s: %s; retrying", item[0], item[2], e.message)
                self.queue.add_rate_limited(item)
            except Exception as e:
                log.error("%s %s failed: %r; retrying", item[0], item[2], e,
                          exc_info=log.isEnabledFor(logging.DEBUG))
                self.queue.add_rate_limited(item)
            finally:
                self.queue.done(item)

    def attempt_to_delete(self, monitor: _Monitor, key: str) -> None:
        """A dependent: deleted when none of its owners is alive; references to owners that
        are gone (or waiting for their dependents) removed when another owner is alive."""
        obj = monitor.informer.store.get(key)
        if obj is None:
            return
        meta = obj["metadata"]
        refs = meta.get("ownerReferences") or []
        if not refs or meta.get("deletionTimestamp"):
            return
        solid, dangling, waiting = [], [], []
        for ref in refs:
            state = self._owner_state(ref, meta.get("namespace", ""))
            {"solid": solid, "dangling": dangling, "waiting": waiting}[state].append(ref)
        if solid:
            gone = {r.get("uid") for r in dangling + waiting}
            if gone:
                self._remove_refs(monitor, obj, gone)
                log.info("%s %s: removed owner references to %s", monitor.resource.kind, key,
                         ", ".join(sorted(r.get("name", "") for r in dangling + waiting)))
            return
        finalizers = _finalizers(obj)
        if waiting and any(True for _ in self.dependents(obj)):
            policy = "Foreground"
        elif ORPHAN in finalizers:
            policy = "Orphan"
        elif FOREGROUND in finalizers:
            policy = "Foreground"
        else:
            policy = "Background"
        log.info("Deleting %s %s (owners gone or being deleted), propagationPolicy %s",
                 monitor.resource.kind, key, policy)
        self._delete(monitor.resource, obj, policy)

    def _owner_state(self, ref: dict, namespace: str) -> str:
        monitor = self._monitor(ref.get("apiVersion", ""), ref.get("kind", ""))
        if monitor is None:
            return "solid"
        ns = namespace if monitor.resource.namespaced else ""
        name = ref.get("name", "")
        owner = monitor.informer.store.get(f"{ns}/{name}" if ns else name)
        if owner is None or owner["metadata"].get("uid") != ref.get("uid"):
            try:  # the cache may lag: ask the server before calling the owner gone
                owner = self.client.get(monitor.resource.object_path(ns, name))
            except ApiError as e:
                if e.code != 404:
                    raise
                owner = None
        if owner is None or owner["metadata"].get("uid") != ref.get("uid"):
            return "dangling"
        if owner["metadata"].get("deletionTimestamp") and FOREGROUND in _finalizers(owner):
            return "waiting"
        return "solid"

    def process_deleting_owner(self, monitor: _Monitor, key: str) -> None:
        """An owner with deletionTimestamp and the orphan or foregroundDeletion finalizer."""
        owner = monitor.informer.store.get(key)
        if owner is None or not owner["metadata"].get("deletionTimestamp"):
            return
        finalizers = _finalizers(owner)
        uid = owner["metadata"]["uid"]
        kind = monitor.resource.kind
        if ORPHAN in finalizers:
            for dep_monitor, dep in list(self.dependents(owner)):
                self._remove_refs(dep_monitor, dep, {uid})
                log.info("Orphaned %s %s of %s %s", dep_monitor.resource.kind, object_key(dep),
                         kind, key)
            self._remove_finalizer(monitor.resource, owner, ORPHAN)
            log.info("%s %s: dependents orphaned, removed finalizer orphan", kind, key)
            return
        if FOREGROUND not in finalizers:
            return
        blocking = []
        for dep_monitor, dep in list(self.dependents(owner)):
            dep_meta = dep["metadata"]
            if not dep_meta.get("deletionTimestamp"):
                policy = "Foreground" if any(True for _ in self.dependents(dep)) else \
                    "Background"
                log.info("Deleting %s %s, dependent of %s %s in foreground deletion",
                         dep_monitor.resource.kind, object_key(dep), kind, key)
                self._delete(dep_monitor.resource, dep, policy)
            if any(r.get("uid") == uid and r.get("blockOwnerDeletion")
                   for r in dep_meta.get("ownerReferences") or []):
                blocking.append(object_key(dep))
        if blocking:
            self.queue.add_after(("owner", (monitor.resource.group, kind), key),
                                 BLOCKED_RECHECK)
            return
        self._remove_finalizer(monitor.resource, owner, FOREGROUND)
        log.info("%s %s: no blocking dependents left, removed finalizer foregroundDeletion",
                 kind, key)

    # -- writes -----------------------------------------------------------------------------

    def _delete(self, res: Resource, obj: dict, policy: str) -> None:
        ns, name = split_key(object_key(obj))
        try:
            self.client.delete(res.object_path(ns, name),
                               {"propagationPolicy": policy,
                                "preconditions": {"uid": obj["metadata"]["uid"]}})
        except ApiError as e:
            if e.code not in (404, 409):  # gone already, or a new object of the same name
                raise

    def _remove_refs(self, monitor: _Monitor, obj: dict, uids: set[str]) -> None:
        meta = obj["metadata"]
        remaining = [r for r in meta.get("ownerReferences") or [] if r.get("uid") not in uids]
        ns, name = split_key(object_key(obj))
        try:
            self.client.patch(monitor.resource.object_path(ns, name), {"metadata": {
                "ownerReferences": remaining or None,
                "resourceVersion": meta["resourceVersion"]}})
        except ApiError as e:
            if e.code != 404:
                raise

    def _remove_finalizer(self, res: Resource, obj: dict, finalizer: str) -> None:
        meta = obj["metadata"]
        ns, name = split_key(object_key(obj))
        try:
            self.client.patch(res.object_path(ns, name), {"metadata": {
                "finalizers": [f for f in _finalizers(obj) if f != finalizer] or None,
                "resourceVersion": meta["resourceVersion"]}})
        except ApiError as e:
            if e.code != 404:
                raise


def start(ctx: ControllerContext) -> None:
    GarbageCollector(ctx).start()
