"""Informers: a local, always-current copy of one resource kept by list + watch, as client-go's
SharedIndexInformer, with event handlers and indexes. Controllers read the cache, never the API.

    factory = InformerFactory(client, resync=30.0)
    pods = factory.informer(resource_path("", "v1", "pods"))          # shared per path+selectors
    pods.add_indexer("node", lambda pod: [pod["spec"].get("nodeName", "")])
    pods.add_event_handler(on_add=..., on_update=..., on_delete=...)  # before or after start
    factory.start()                                                   # a thread per informer
    factory.wait_for_sync(timeout=30)                                 # every informer has listed
    pods.store.get("ns/name"); pods.store.list(); pods.store.by_index("node", "n1")
    factory.stop()

Keys are "namespace/name", or "name" for cluster-scoped objects (`object_key`).

What it does, as client-go's Reflector: a paged list (`limit`/`continue`), then a watch from the
list's resourceVersion with allowWatchBookmarks and a 5-10 minute timeoutSeconds; a watch that
ends is resumed from the last resourceVersion seen (events or bookmarks). 410 Gone (history
compacted) relists at once; any other failure backs off (0.8 s doubling to 30 s) and resumes,
relisting only when resuming is not possible; so does a watch that the server ends within a
second. A relist reconciles the cache: objects it no longer has are delivered to on_delete as a
DeletedFinalStateUnknown tombstone, the rest as updates.

Handlers: on_add(obj), on_update(old, new), on_delete(obj | DeletedFinalStateUnknown). Each
handler registration has its own thread and unbounded queue, so a slow handler delays neither the
watch nor the others; a registration made after the start first receives on_add for every cached
object. Every `resync` seconds (0: never) each cached object is re-delivered as on_update(obj,
obj), so that controllers converge even when they missed or mishandled an event. Objects handed
to handlers are shared with the cache: treat them as read-only (copy.deepcopy before changing).
"""
from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kubeapi.restclient import ApiClient, Unavailable
from kubeapi.status import ApiError

log = logging.getLogger("informer")

BACKOFF_START = 0.8
BACKOFF_MAX = 30.0
MIN_WATCH_TIMEOUT = 300  # seconds; each watch asks for a random timeout up to twice this
PAGE_SIZE = 500
SHORT_WATCH = 1.0  # seconds; a watch that ends sooner is resumed after a back-off
NAMESPACE_INDEX = "namespace"

IndexFunc = Callable[[dict], Iterable[str]]


def resource_path(group: str, version: str, plural: str, namespace: str = "") -> str:
    """The collection's URL path: /api/v1/pods, /apis/coordination.k8s.io/v1/namespaces/x/leases."""
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    return f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"


def object_key(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace") or ""
    return f"{ns}/{meta.get('name', '')}" if ns else meta.get("name", "")


def split_key(key: str) -> tuple[str, str]:
    """(namespace, name); namespace is "" for a cluster-scoped key."""
    ns, _, name = key.rpartition("/")
    return ns, name


@dataclass(frozen=True)
class DeletedFinalStateUnknown:
    """The last known state of an object whose deletion the informer did not see as an event
    (it was gone at a relist); `obj` may be stale."""
    key: str
    obj: dict


def object_of(item: dict | DeletedFinalStateUnknown) -> dict:
    """The object a delete handler was given, whether the event or a tombstone carried it."""
    return item.obj if isinstance(item, DeletedFinalStateUnknown) else item


def _namespace_index(obj: dict) -> list[str]:
    return [(obj.get("metadata") or {}).get("namespace") or ""]


class Store:
    """The thread-safe cache: objects by key, with indexes (index name -> value -> keys)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, dict] = {}
        self._indexers: dict[str, IndexFunc] = {NAMESPACE_INDEX: _namespace_index}
        self._indexes: dict[str, dict[str, set[str]]] = {NAMESPACE_INDEX: {}}

    def add_indexer(self, name: str, func: IndexFunc) -> None:
        """A custom index: func(obj) gives the values the object is found under. Adding the
        same function under the same name again is a no-op (controllers sharing an informer
        share module-level index functions); another function under that name: ValueError."""
        with self._lock:
            if self._indexers.get(name) is func:
                return
            if name in self._indexers:
                raise ValueError(f"indexer {name!r} already exists")
            self._indexers[name] = func
            index: dict[str, set[str]] = {}
            for key, obj in self._items.items():
                for value in func(obj):
                    index.setdefault(value, set()).add(key)
            self._indexes[name] = index

    def get(self, key: str) -> dict | None:
        with self._lock:
            return self._items.get(key)

    def list(self) -> list[dict]:
        with self._lock:
            return list(self._items.values())

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._items)

    def by_index(self, index: str, value: str) -> list[dict]:
        with self._lock:
            keys = self._indexes[index].get(value, ())
            return [self._items[k] for k in keys]

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    # writes, by the informer only

    def _put(self, key: str, obj: dict) -> dict | None:
        with self._lock:
            old = self._items.get(key)
            if old is not None:
                self._unindex(key, old)
            self._items[key] = obj
            for name, func in self._indexers.items():
                for value in func(obj):
                    self._indexes[name].setdefault(value, set()).add(key)
            return old

    def _pop(self, key: str) -> dict | None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._unindex(key, old)
            return old

    def _unindex(self, key: str, obj: dict) -> None:
        for name, func in self._indexers.items():
            index = self._indexes[name]
            for value in func(obj):
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]


@dataclass
class _Handler:
    on_add: Callable[[dict], None] | None
    on_update: Callable[[dict, dict], None] | None
    on_delete: Callable[[object], None] | None
    events: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    thread: threading.Thread | None = None

    def run(self) -> None:
        while True:
            event = self.events.get()
            if event is None:
                return
            kind, args = event
            func = {"add": self.on_add, "update": self.on_update, "delete": self.on_delete}[kind]
            if func is None:
                continue
            try:
                func(*args)
            except Exception as e:
                # One bad event must not end the handler; controllers also resync. The
                # traceback only at debug level: the log is read by operators.
                log.error("informer event handler failed: %r", e,
                          exc_info=log.isEnabledFor(logging.DEBUG))


class Informer:
    """List + watch of one collection into a Store, with handlers. Build through
    InformerFactory.informer() so that controllers share it."""

    def __init__(self, client: ApiClient, path: str, *, label_selector: str = "",
                 field_selector: str = "", resync: float = 0.0,
                 page_size: int = PAGE_SIZE) -> None:
        self.client = client
        self.page_size = page_size
        self.path = path
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync = resync
        self.store = Store()
        self.resource_version = ""
        self.lists = 0  # how many lists this informer made (the first, then relists)
        self._handlers: list[_Handler] = []
        self._lock = threading.Lock()
        self._synced = threading.Event()
        self._stop = threading.Event()
        self._watch = None
        self._threads: list[threading.Thread] = []
        self._started = False

    # -- the API ----------------------------------------------------------------------------

    def add_indexer(self, name: str, func: IndexFunc) -> None:
        self.store.add_indexer(name, func)

    def add_event_handler(self, on_add: Callable[[dict], None] | None = None,
                          on_update: Callable[[dict, dict], None] | None = None,
                          on_delete: Callable[[object], None] | None = None) -> None:
        handler = _Handler(on_add, on_update, on_delete)
        with self._lock:
            self._handlers.append(handler)
            started = self._started
            if started:
                for obj in self.store.list():
                    handler.events.put(("add", (obj,)))
                self._start_handler(handler)

    def start(self) -> None:
        """Starts the list/watch thread (and the handlers'); returns at once. Idempotent."""
        with self._lock:
            if self._started:
                return
            self._started = True
            for handler in self._handlers:
                self._start_handler(handler)
        self._spawn(self._run, "reflector")
        if self.resync > 0:
            self._spawn(self._resync_loop, "resync")

    def has_synced(self) -> bool:
        """True once the first list is in the cache (and its add events queued)."""
        return self._synced.is_set()

    def wait_for_sync(self, timeout: float | None = None) -> bool:
        return self._synced.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Ends the watch and every thread of this informer; handlers finish their current
        event, queued events are dropped."""
        self._stop.set()
        watch = self._watch
        if watch is not None:
            watch.close()
        with self._lock:
            handlers = list(self._handlers)
        for handler in handlers:
            handler.events.put(None)
        for thread in self._threads + [h.thread for h in handlers if h.thread]:
            if thread is not threading.current_thread():
                thread.join(timeout)

    # -- internals --------------------------------------------------------------------------

    def _spawn(self, target: Callable[[], None], what: str) -> threading.Thread:
        thread = threading.Thread(target=target, name=f"informer {what} {self.path}",
                                  daemon=True)
        self._threads.append(thread)
        thread.start()
        return thread

    def _start_handler(self, handler: _Handler) -> None:
        handler.thread = threading.Thread(target=handler.run, daemon=True,
                                          name=f"informer handler {self.path}")
        handler.thread.start()

    def _notify(self, kind: str, *args: object) -> None:
        with self._lock:
            handlers = list(self._handlers)
        for handler in handlers:
            handler.events.put((kind, args))

    def _query(self) -> dict:
        return {"labelSelector": self.label_selector or None,
                "fieldSelector": self.field_selector or None}

    def _run(self) -> None:
        delay = BACKOFF_START
        must_list = True
        while not self._stop.is_set():
            try:
                if must_list:
                    self._list()
                    must_list = False
                started = time.monotonic()
                self._watch_once()
                if self._stop.is_set():
                    return
                if time.monotonic() - started >= SHORT_WATCH:
                    delay = BACKOFF_START
                    continue  # the server ended the watch (its timeout): resume at once
                # A watch the server ends at once, again and again, is resumed with back-off.
                log.warning("%s: the watch ended after %.1fs; resuming in %.1fs", self.path,
                            time.monotonic() - started, delay)
            except ApiError as e:
                if self._stop.is_set():
                    return
                if e.code == 410:
                    log.info("%s: %s; relisting", self.path, e.message)
                    must_list = True
                    continue
                if not isinstance(e, Unavailable) and e.code not in (429, 500, 503, 504):
                    must_list = True  # an answer we cannot resume from (e.g. 400, 403)
                log.warning("%s: %s; retrying in %.1fs", self.path, e, delay)
            except (OSError, ValueError) as e:
                if self._stop.is_set():
                    return
                log.warning("%s: %s; retrying in %.1fs", self.path, e, delay)
            if self._stop.wait(delay * random.uniform(1.0, 1.2)):
                return
            delay = min(delay * 2, BACKOFF_MAX)

    def _list(self) -> None:
        items, rv = self.client.list_all(self.path, self._query(), page=self.page_size)
        self.lists += 1
        fresh = {object_key(o): o for o in items}
        for key in self.store.keys():
            if key not in fresh:
                old = self.store._pop(key)
                if old is not None:
                    self._notify("delete", DeletedFinalStateUnknown(key, old))
        for key, obj in fresh.items():
            old = self.store._put(key, obj)
            if old is None:
                self._notify("add", obj)
            else:
                self._notify("update", old, obj)
        self.resource_version = rv
        self._synced.set()

    def _watch_once(self) -> None:
        query = dict(self._query(), resourceVersion=self.resource_version,
                     allowWatchBookmarks="true",
                     timeoutSeconds=str(random.randint(MIN_WATCH_TIMEOUT, 2 * MIN_WATCH_TIMEOUT)))
        watch = self.client.watch(self.path, query)
        self._watch = watch
        if self._stop.is_set():  # stop() ran before the watch was visible to it
            watch.close()
            return
        try:
            for kind, obj in watch:
                rv = (obj.get("metadata") or {}).get("resourceVersion")
                if kind == "BOOKMARK":
                    self.resource_version = rv or self.resource_version
                    continue
                key = object_key(obj)
                if kind in ("ADDED", "MODIFIED"):
                    old = self.store._put(key, obj)
                    if old is None:
                        self._notify("add", obj)
                    else:
                        self._notify("update", old, obj)
                elif kind == "DELETED":
                    self.store._pop(key)
                    self._notify("delete", obj)
                if rv:
                    self.resource_version = rv
        finally:
            self._watch = None
            watch.close()

    def _resync_loop(self) -> None:
        while not self._stop.wait(self.resync):
            if self.has_synced():
                for obj in self.store.list():
                    self._notify("update", obj, obj)


class InformerFactory:
    """One informer per (path, label selector, field selector), shared by every controller
    that asks for it; start() starts those not yet started (call it again after adding)."""

    def __init__(self, client: ApiClient, resync: float = 0.0) -> None:
        self.client = client
        self.resync = resync
        self._lock = threading.Lock()
        self._informers: dict[tuple[str, str, str], Informer] = {}

    def informer(self, path: str, label_selector: str = "",
                 field_selector: str = "") -> Informer:
        key = (path, label_selector, field_selector)
        with self._lock:
            informer = self._informers.get(key)
            if informer is None:
                informer = self._informers[key] = Informer(
                    self.client, path, label_selector=label_selector,
                    field_selector=field_selector, resync=self.resync)
            return informer

    def informers(self) -> list[Informer]:
        with self._lock:
            return list(self._informers.values())

    def start(self) -> None:
        for informer in self.informers():
            informer.start()

    def wait_for_sync(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        for informer in self.informers():
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not informer.wait_for_sync(left):
                return False
        return True

    def stop(self) -> None:
        for informer in self.informers():
            informer.stop()
