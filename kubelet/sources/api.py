"""Where pods come from. The API source lists the pods bound to this node (fieldSelector
spec.nodeName) and watches from the list's resourceVersion; a broken watch resumes, an expired
one (410) lists again, an API server that does not answer is retried with back-off, and one that
cannot watch is polled. Every list is handed over whole (what is missing from it is gone), every
watch event one by one. Issue 9's static pod files become a second source of the same shape."""
from __future__ import annotations

import logging
import random
import threading
from typing import Protocol

from kubeapi.restclient import ApiClient, Watch
from kubeapi.status import ApiError
from kubelet.pods import Pod

log = logging.getLogger("kubelet.sources")

POLL_INTERVAL = 10.0
BACKOFF_FIRST, BACKOFF_MAX = 0.8, 10.0


class PodHandler(Protocol):
    def set_pods(self, source: str, pod_list: list[Pod]) -> None:
        """The source's complete set of pods now."""

    def pod_event(self, source: str, kind: str, pod: Pod) -> None:
        """ADDED, MODIFIED or DELETED."""


class ApiPodSource:
    name = "api"

    def __init__(self, client: ApiClient, node_name: str, handler: PodHandler) -> None:
        self.client = client
        self.handler = handler
        self.query = {"fieldSelector": f"spec.nodeName={node_name}"}
        self.synced = threading.Event()     # set once a first list arrived
        self._watch: Watch | None = None
        self._lock = threading.Lock()

    def run(self, stop: threading.Event) -> None:
        delay = BACKOFF_FIRST
        while not stop.is_set():
            try:
                items, version = self.client.list_all("/api/v1/pods", self.query)
                self.handler.set_pods(self.name, [Pod(item) for item in items])
                self.synced.set()
                delay = BACKOFF_FIRST
                if not self._watch_from(version, stop):
                    stop.wait(POLL_INTERVAL)    # this server cannot watch: poll instead
            except ApiError as e:
                if stop.is_set():
                    return
                log.info("pods of this node: %s; again in %.1f s", e, delay)
                stop.wait(delay * (1 + random.random() * 0.2))
                delay = min(delay * 2, BACKOFF_MAX)

    def _watch_from(self, version: str, stop: threading.Event) -> bool:
        """Watches until the stream must be listed again; False if watching is impossible."""
        while not stop.is_set():
            query = dict(self.query, resourceVersion=version, allowWatchBookmarks="true",
                         timeoutSeconds=str(random.randint(300, 600)))
            try:
                watch = self.client.watch("/api/v1/pods", query)
            except ApiError as e:
                if e.code in (404, 405, 501):
                    return False
                raise
            with self._lock:
                self._watch = watch
            if stop.is_set():
                watch.close()
            try:
                for kind, obj in watch:
                    version = (obj.get("metadata") or {}).get("resourceVersion") or version
                    if kind in ("ADDED", "MODIFIED", "DELETED"):
                        self.handler.pod_event(self.name, kind, Pod(obj))
            except ApiError as e:
                if e.code == 410:     # too old: list again
                    return True
                if not stop.is_set():
                    raise
            finally:
                with self._lock:
                    self._watch = None
        return True

    def stop(self) -> None:
        with self._lock:
            if self._watch is not None:
                self._watch.close()
