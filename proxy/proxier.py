"""The proxy's loop: informer events mark Services dirty, one thread turns the dirty set into
one incremental sync at most every `min_sync_period` (kube-proxy's --min-sync-period), so a
burst of endpoint changes costs one transaction. The first sync, once both informers have
listed, is a full one; so is the next after a failed sync."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from kubeapi.informer import DeletedFinalStateUnknown, Informer

from .healthz import Health
from .model import ServiceModel
from .syncer import Syncer

log = logging.getLogger("pykube-proxy")


@dataclass
class Proxier:
    syncer: Syncer
    min_sync_period: float = 1.0
    sync_period: float = 30.0
    health: Health | None = None
    model: ServiceModel = field(default_factory=ServiceModel)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _dirty: set[str] = field(default_factory=set)
    _wake: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _need_full: bool = True

    def watch(self, services: Informer, slices: Informer) -> None:
        services.add_event_handler(on_add=self._service_set,
                                   on_update=lambda _old, new: self._service_set(new),
                                   on_delete=self._service_deleted)
        slices.add_event_handler(on_add=self._slice_set,
                                 on_update=self._slice_updated,
                                 on_delete=self._slice_deleted)

    def _mark(self, key: str) -> None:
        if key:
            with self._lock:
                self._dirty.add(key)
            if self.health is not None:
                self.health.queued()
            self._wake.set()

    def _service_set(self, svc: dict) -> None:
        with self._lock:
            key = self.model.set_service(svc)
        self._mark(key)

    def _service_deleted(self, obj: object) -> None:
        svc = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        with self._lock:
            key = self.model.delete_service(svc)
        self._mark(key)

    def _slice_set(self, eps: dict) -> None:
        with self._lock:
            key = self.model.set_slice(eps)
        self._mark(key)

    def _slice_updated(self, old: dict, new: dict) -> None:
        # A slice relabelled to another Service leaves the first one too.
        with self._lock:
            before = self.model.delete_slice(old)
            after = self.model.set_slice(new)
        self._mark(before)
        self._mark(after)

    def _slice_deleted(self, obj: object) -> None:
        eps = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        with self._lock:
            key = self.model.delete_slice(eps)
        self._mark(key)

    def run(self, ready: threading.Event | None = None) -> None:
        """Syncs until stop(). `ready` (the informers' sync) gates the first, full sync, so
        that the table is never replaced by a half-listed state."""
        if ready is not None:
            while not self._stop.is_set() and not ready.wait(0.5):
                pass
        self._wake.set()  # the full sync, events or not
        last = 0.0
        while not self._stop.is_set():
            wait = max(0.0, last + self.min_sync_period - time.monotonic())
            if wait:
                self._stop.wait(wait)
            self._wake.wait(self.sync_period)
            if self._stop.is_set():
                return
            self._wake.clear()
            last = time.monotonic()
            self.sync_once()

    def sync_once(self) -> None:
        if not self._need_full and not self._table_there():
            log.warning("table ip %s is gone; a full sync makes it again",
                        self.syncer.opts.table)
            self._need_full = True
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            full = self._need_full
            ports = {k: self.model.service_ports(k) for k in
                     (self.model.keys() if full else sorted(dirty))}
        started = time.monotonic()
        try:
            if full:
                self.syncer.full_sync(ports)
            else:
                self.syncer.sync(ports)
                self.syncer.delete_stale()
        except OSError as e:
            log.error("sync failed, the next one is full: %s", e)
            with self._lock:
                self._need_full = True
                self._dirty |= dirty
            self._wake.set()
            return
        self._need_full = False
        if self.health is not None:
            self.health.updated()
        log.debug("%s sync of %d services in %.1f ms", "full" if full else "partial",
                  len(ports), (time.monotonic() - started) * 1000)

    def _table_there(self) -> bool:
        try:
            return self.syncer.table_exists()
        except OSError as e:
            log.error("cannot list nftables tables: %s", e)
            return False

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
