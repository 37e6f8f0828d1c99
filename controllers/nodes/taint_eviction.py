"""The taint eviction controller, as kube's taint-eviction-controller: a pod bound to a node with
NoExecute taints is deleted at once when it does not tolerate one of them, or when the shortest
tolerationSeconds that applies has passed since the taint's timeAdded (DefaultTolerationSeconds
gives every pod 300 s for not-ready and unreachable). Pods that tolerate the taints forever stay;
a taint removed before the time is up cancels the deletion (the pod is checked again then)."""
from __future__ import annotations

import logging
import time

from kubeapi import timefmt
from kubeapi.informer import object_key, resource_path, split_key
from kubeapi.status import ApiError
from kubeapi.workqueue import RateLimitingQueue

from .. import indexes
from ..context import ControllerContext
from ..events import EventRecorder
from ..workers import start_workers
from . import taints

log = logging.getLogger("taint-eviction-controller")
WORKERS = 2


def _no_execute(node: dict | None) -> list[dict]:
    return [t for t in ((node or {}).get("spec") or {}).get("taints") or []
            if t.get("effect") == "NoExecute"]


class TaintEvictionController:
    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.nodes = ctx.informers.informer(resource_path("", "v1", "nodes"))
        self.pods = ctx.informers.informer(resource_path("", "v1", "pods"))
        self.pods.add_indexer(indexes.POD_NODE, indexes.pod_node)
        self.recorder = EventRecorder(ctx.client, "taint-eviction-controller")
        self.queue = RateLimitingQueue(name="taint-eviction")
        self.pods.add_event_handler(on_add=self._pod_changed,
                                    on_update=lambda old, new: self._pod_changed(new))
        self.nodes.add_event_handler(on_add=self._node_changed,
                                     on_update=self._node_updated)

    def _pod_changed(self, pod: dict) -> None:
        if (pod.get("spec") or {}).get("nodeName"):
            self.queue.add(object_key(pod))

    def _node_changed(self, node: dict) -> None:
        if _no_execute(node):
            self._queue_pods_of(node)

    def _node_updated(self, old: dict, new: dict) -> None:
        if _no_execute(old) != _no_execute(new):
            self._queue_pods_of(new)

    def _queue_pods_of(self, node: dict) -> None:
        for pod in self.pods.store.by_index(indexes.POD_NODE, node["metadata"]["name"]):
            self.queue.add(object_key(pod))

    def start(self) -> None:
        start_workers(self.ctx, "taint-eviction", self.queue, self.sync, [self.nodes, self.pods],
                      WORKERS, log)

    def sync(self, key: str) -> None:
        pod = self.pods.store.get(key)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return
        node = self.nodes.store.get(pod["spec"].get("nodeName") or "")
        no_execute = _no_execute(node)
        if not no_execute:
            return
        seconds = taints.toleration_seconds(pod["spec"].get("tolerations") or [], no_execute)
        if seconds is None:
            return
        added = [timefmt.parse(t["timeAdded"]) for t in no_execute if t.get("timeAdded")]
        since = max(added) if added else time.time()
        left = since + seconds - time.time()
        if left > 0:
            self.queue.add_after(key, left)
            return
        ns, name = split_key(key)
        log.info("Deleting pod %s: node %s has taints %s", key, node["metadata"]["name"],
                 ",".join(sorted(t["key"] for t in no_execute)))
        self.recorder.event({"kind": "Pod", **pod}, "Normal", "TaintManagerEviction",
                            f"Marking for deletion Pod {key}")
        try:
            self.ctx.client.delete(f"/api/v1/namespaces/{ns}/pods/{name}",
                                   {"preconditions": {"uid": pod["metadata"]["uid"]}})
        except ApiError as e:
            if e.code not in (404, 409):
                raise


def start(ctx: ControllerContext) -> None:
    TaintEvictionController(ctx).start()
