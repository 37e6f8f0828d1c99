"""core/v1 Events about pods and the node (the kubelet's event recorder), so that `kubectl
describe pod` (and node) tells the story: posted by one thread from a bounded queue, so that pod
work never waits on the API server; a repeat of the same event within ten minutes updates its
count instead of making another (the client-go correlator's aggregation, reduced to exact
repeats). Without an API server, or while it is down, events are dropped with a log line: they
are not state."""
from __future__ import annotations

import logging
import queue
import threading
import time
import uuid

from kubeapi import timefmt
from kubeapi.restclient import ApiClient
from kubeapi.status import ApiError
from kubelet.pods import Pod

log = logging.getLogger("kubelet.events")

NORMAL, WARNING = "Normal", "Warning"
QUEUE_SIZE = 1000
REPEAT_WINDOW = 600.0


class EventRecorder:
    def __init__(self, client: ApiClient | None, node_name: str) -> None:
        self.client = client
        self.node_name = node_name
        self._queue: queue.Queue = queue.Queue(QUEUE_SIZE)
        # (namespace, uid, fieldPath, reason, message) -> (event name, count, first, last)
        self._seen: dict[tuple, tuple[str, int, str, float]] = {}
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)
        if client is not None:
            self._thread.start()

    def pod(self, pod: Pod, kind: str, reason: str, message: str,
            container: str | None = None) -> None:
        """Records an event about the pod (about one of its containers if named)."""
        if self.client is None:
            return
        involved = {"kind": "Pod", "namespace": pod.namespace, "name": pod.name,
                    "uid": pod.uid, "apiVersion": "v1",
                    "resourceVersion": pod.resource_version}
        if container is not None:
            prefix = "spec.initContainers" if container in {
                c["name"] for c in pod.init_containers} else "spec.containers"
            involved["fieldPath"] = f"{prefix}{{{container}}}"
        try:
            self._queue.put_nowait((involved, kind, reason, message))
        except queue.Full:
            log.warning("event dropped (queue full): %s %s", reason, message)

    def node(self, kind: str, reason: str, message: str) -> None:
        """Records an event about this node; as the kubelet's, its involvedObject's uid is the
        node's name and the event lives in the default namespace."""
        if self.client is None:
            return
        involved = {"kind": "Node", "name": self.node_name, "uid": self.node_name,
                    "apiVersion": "v1"}
        try:
            self._queue.put_nowait((involved, kind, reason, message))
        except queue.Full:
            log.warning("event dropped (queue full): %s %s", reason, message)

    def stop(self) -> None:
        if self.client is not None:
            self._queue.put(None)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self._post(*item)
            except (ApiError, OSError) as e:
                log.info("event %s not posted: %s", item[2], e)
            except Exception:  # noqa: BLE001 - one event's trouble must not end the poster
                log.exception("event %s not posted", item[2])

    def _post(self, involved: dict, kind: str, reason: str, message: str) -> None:
        namespace = involved.get("namespace") or "default"
        key = (namespace, involved["uid"], involved.get("fieldPath"), reason, message)
        now = time.time()
        stamp = timefmt.rfc3339(now)
        seen = self._seen.get(key)
        path = f"/api/v1/namespaces/{namespace}/events"
        if seen is not None and now - seen[3] < REPEAT_WINDOW:
            name, count, first, _ = seen
            self.client.patch(f"{path}/{name}", {"count": count + 1, "lastTimestamp": stamp})
            self._seen[key] = (name, count + 1, first, now)
            return
        name = f"{involved['name']}.{uuid.uuid4().hex[:16]}"
        self.client.create(path, {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": involved, "reason": reason, "message": message, "type": kind,
            "source": {"component": "kubelet", "host": self.node_name},
            "reportingComponent": "kubelet", "reportingInstance": self.node_name,
            "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1})
        self._seen[key] = (name, 1, stamp, now)
        if len(self._seen) > QUEUE_SIZE:
            horizon = now - REPEAT_WINDOW
            self._seen = {k: v for k, v in self._seen.items() if v[3] >= horizon}
