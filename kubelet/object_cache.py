"""The ConfigMaps and Secrets that the node's pods reference, each kept current by its own list +
watch (fieldSelector metadata.name): the kubelet's "Watch" change detection strategy, its
default (pkg/kubelet/util/manager, watch_based_manager.go). A pod registers what it references
before its syncs; an object's first reference starts its watch and its last one stops it. Pod
syncs read the cache and make no request, and an update is in the cache as soon as its event.

As the reference: an object read as immutable has its watch stopped and stays cached, so that a
container of a pod that uses it still starts after the object is deleted; a watch nobody read
for `max_idle` is stopped (`stop_idle`) and the next read starts it again and waits for its
list, so that objects only container env reads do not hold a watch each for the pod's life."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from kubeapi.informer import Informer, resource_path
from kubeapi.restclient import ApiClient
from kubelet.pods import Pod

# How long a read waits for its object's first list. The reference waits 1 s; our API server
# under a burst of pod starts can take longer to answer a list, and a read that gives up fails
# the pod's sync until its retry.
SYNC_WAIT = 5.0

Ref = tuple[str, str]            # (resource, name) in the pod's namespace
Key = tuple[str, str, str]       # (resource, namespace, name)


class CacheNotReady(RuntimeError):
    """The object has no synced watch to read from: not registered, or its list did not come
    in time."""


def references(pod: Pod) -> set[Ref]:
    """The ConfigMaps and Secrets the pod's volumes (projected too) and its containers' env and
    envFrom read."""
    found: set[Ref] = set()

    def add(kind: str, source: dict | None, field: str = "name") -> None:
        if source and source.get(field):
            found.add(("configmaps" if kind == "configMap" else "secrets", source[field]))

    for volume in pod.volumes:
        add("configMap", volume.get("configMap"))
        add("secret", volume.get("secret"), "secretName")
        for projection in (volume.get("projected") or {}).get("sources") or []:
            add("configMap", projection.get("configMap"))
            add("secret", projection.get("secret"))
    for container in pod.all_containers:
        for source in container.get("envFrom") or []:
            add("configMap", source.get("configMapRef"))
            add("secret", source.get("secretRef"))
        for var in container.get("env") or []:
            value_from = var.get("valueFrom") or {}
            add("configMap", value_from.get("configMapKeyRef"))
            add("secret", value_from.get("secretKeyRef"))
    return found


@dataclass
class _Watched:
    informer: Informer
    last_read: float
    refs: int = 0
    stopped: bool = False
    immutable: bool = False


class ObjectCache:
    def __init__(self, client: ApiClient, max_idle: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.max_idle = max_idle
        self.clock = clock
        self._lock = threading.Lock()
        self._items: dict[Key, _Watched] = {}
        self._pods: dict[str, tuple[str, set[Ref]]] = {}

    def register(self, pod: Pod) -> None:
        """The pod's references, counted once however often it is registered: a pod whose
        ephemeral containers were added gains theirs."""
        refs = references(pod)
        with self._lock:
            old = self._pods.get(pod.uid, ("", set()))[1]
            self._pods[pod.uid] = (pod.namespace, refs)
            for ref in refs - old:
                self._add_ref((ref[0], pod.namespace, ref[1]))
            stopping = [self._drop_ref((ref[0], pod.namespace, ref[1])) for ref in old - refs]
        _stop_all(stopping)

    def unregister(self, uid: str) -> None:
        with self._lock:
            namespace, refs = self._pods.pop(uid, ("", set()))
            stopping = [self._drop_ref((ref[0], namespace, ref[1])) for ref in refs]
        _stop_all(stopping)

    def get(self, resource: str, namespace: str, name: str) -> dict | None:
        """The object as its watch has it, None if it does not exist."""
        with self._lock:
            item = self._items.get((resource, namespace, name))
            if item is None:
                raise CacheNotReady(f'object "{namespace}"/"{name}" not registered')
            item.last_read = self.clock()
            if item.stopped and not item.immutable:
                item.informer = self._start(resource, namespace, name)
                item.stopped = False
            informer = item.informer
        if not informer.wait_for_sync(SYNC_WAIT):
            raise CacheNotReady(f"failed to sync {resource} cache: timed out waiting for the "
                                "condition")
        obj = informer.store.get(f"{namespace}/{name}")
        if obj is not None and obj.get("immutable") is True:
            with self._lock:
                stop = not item.immutable and not item.stopped
                item.immutable = item.stopped = True
            if stop:
                informer.stop(timeout=0)
        return obj

    def watching(self) -> set[Key]:
        """The objects whose watch runs now."""
        with self._lock:
            return {key for key, item in self._items.items() if not item.stopped}

    def stop_idle(self) -> None:
        """Stops the watches of objects nobody read for max_idle, once they have listed (a
        list in flight would be lost work)."""
        now = self.clock()
        stopping = []
        with self._lock:
            for item in self._items.values():
                if not item.stopped and now - item.last_read > self.max_idle and \
                        item.informer.has_synced():
                    item.stopped = True
                    stopping.append(item.informer)
        _stop_all(stopping)

    def stop(self) -> None:
        with self._lock:
            stopping = [item.informer for item in self._items.values() if not item.stopped]
            self._items.clear()
            self._pods.clear()
        _stop_all(stopping)

    def _start(self, resource: str, namespace: str, name: str) -> Informer:
        informer = Informer(self.client, resource_path("", "v1", resource, namespace),
                            field_selector=f"metadata.name={name}")
        informer.start()
        return informer

    def _add_ref(self, key: Key) -> None:
        item = self._items.get(key)
        if item is None:
            item = self._items[key] = _Watched(self._start(*key), self.clock())
        item.refs += 1

    def _drop_ref(self, key: Key) -> Informer | None:
        """The informer to stop when this was the last reference."""
        item = self._items.get(key)
        if item is None:
            return None
        item.refs -= 1
        if item.refs > 0:
            return None
        del self._items[key]
        return None if item.stopped else item.informer


def _stop_all(informers: list[Informer | None]) -> None:
    # Without waiting: the caller is a pod source or housekeeping, and a reflector blocked in
    # a read ends by itself once its watch is closed.
    for informer in informers:
        if informer is not None:
            informer.stop(timeout=0)
