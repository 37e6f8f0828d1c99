"""The Deployment controller, as kube's pkg/controller/deployment: driven by Deployment,
ReplicaSet and Pod events, it claims the ReplicaSets its selector matches (adoption and release
as the ReplicaSet controller does with pods) and runs one rollout.Rollout per sync. kubectl's
rollout history, undo (client-side: it patches the template of a ReplicaSet back into the
Deployment), restart, pause and resume, scale and set image all act through the Deployment's
spec and the ReplicaSets' revision annotations this controller keeps."""
from __future__ import annotations

import copy
import logging

from kubeapi import label_selector
from kubeapi.informer import NAMESPACE_INDEX, object_key, object_of, resource_path
from kubeapi.workqueue import RateLimitingQueue

from ..context import ControllerContext
from ..events import EventRecorder
from ..workers import start_workers
from .controller_ref import Claimer, resolve
from .pod_util import controller_ref
from .replicaset import OWNER_INDEX, pod_controller_uid
from .rollout import Rollout, deployment_path, rs_path, selects

log = logging.getLogger("deployment-controller")


class DeploymentController:
    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.deployments = ctx.informers.informer(resource_path("apps", "v1", "deployments"))
        self.rss = ctx.informers.informer(resource_path("apps", "v1", "replicasets"))
        self.pods = ctx.informers.informer(resource_path("", "v1", "pods"))
        self.pods.add_indexer(OWNER_INDEX, pod_controller_uid)
        self.queue = RateLimitingQueue(name="deployment")
        self.recorder = EventRecorder(ctx.client, "deployment-controller")
        self.deployments.add_event_handler(on_add=self._enqueue,
                                           on_update=lambda old, new: self._enqueue(new),
                                           on_delete=lambda item: self._enqueue(object_of(item)))
        self.rss.add_event_handler(on_add=self._rs_added, on_update=self._rs_updated,
                                   on_delete=self._rs_deleted)
        self.pods.add_event_handler(on_delete=self._pod_deleted)

    def start(self) -> None:
        start_workers(self.ctx, "deployment", self.queue, self.sync,
                      [self.deployments, self.rss, self.pods],
                      self.ctx.options.concurrent_deployment_syncs, log)

    # events

    def _enqueue(self, d: dict) -> None:
        self.queue.add(object_key(d))

    def _resolve(self, namespace: str, ref: dict | None) -> dict | None:
        return resolve(self.deployments.store, namespace, ref, "Deployment")

    def _matching(self, rs: dict) -> list[dict]:
        return [d for d in self.deployments.store.by_index(NAMESPACE_INDEX,
                                                           rs["metadata"].get("namespace", ""))
                if selects(d, rs)]

    def _rs_added(self, rs: dict) -> None:
        if rs["metadata"].get("deletionTimestamp"):
            self._rs_deleted(rs)
            return
        d = self._resolve(rs["metadata"]["namespace"], controller_ref(rs))
        if d is not None:
            self._enqueue(d)
        elif controller_ref(rs) is None:
            for d in self._matching(rs):
                self._enqueue(d)

    def _rs_updated(self, old: dict, new: dict) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return
        ns = new["metadata"]["namespace"]
        old_ref, new_ref = controller_ref(old), controller_ref(new)
        if old_ref != new_ref and old_ref is not None:
            d = self._resolve(ns, old_ref)
            if d is not None:
                self._enqueue(d)
        if new_ref is not None:
            d = self._resolve(ns, new_ref)
            if d is not None:
                self._enqueue(d)
            return
        if old["metadata"].get("labels") != new["metadata"].get("labels") or old_ref != new_ref:
            for d in self._matching(new):
                self._enqueue(d)

    def _rs_deleted(self, item: object) -> None:
        rs = object_of(item)
        d = self._resolve(rs["metadata"].get("namespace", ""), controller_ref(rs))
        if d is not None:
            self._enqueue(d)

    def _pod_deleted(self, item: object) -> None:
        """A Recreate rollout waits for the last old pod to be gone."""
        pod = object_of(item)
        ns = pod["metadata"].get("namespace", "")
        ref = controller_ref(pod)
        if not ref or ref.get("kind") != "ReplicaSet":
            return
        rs = self.rss.store.get(f"{ns}/{ref.get('name', '')}")
        d = self._resolve(ns, controller_ref(rs)) if rs else None
        if d is not None and (d["spec"].get("strategy") or {}).get("type") == "Recreate":
            self._enqueue(d)

    # sync

    def sync(self, key: str) -> None:
        cached = self.deployments.store.get(key)
        if cached is None:
            return
        d = {"apiVersion": "apps/v1", "kind": "Deployment", **copy.deepcopy(cached)}
        meta = d["metadata"]
        ns = meta["namespace"]
        selector = d["spec"].get("selector")
        if label_selector.is_empty(selector):
            self.recorder.event(d, "Warning", "SelectingAll",
                                "This deployment is selecting all pods. A non-empty selector "
                                "is required.")
            status = d.setdefault("status", {})
            if (status.get("observedGeneration") or 0) < (meta.get("generation") or 0):
                status["observedGeneration"] = meta.get("generation")
                self.client.request("PUT", deployment_path(ns, meta["name"]) + "/status", d)
            return
        candidates = [rs for rs in self.rss.store.by_index(NAMESPACE_INDEX, ns)]
        claimer = Claimer(self.client, d, lambda rs: rs_path(ns, rs["metadata"]["name"]),
                          deployment_path(ns, meta["name"]))
        rss = [copy.deepcopy(rs) for rs in claimer.claim(candidates)]
        Rollout(self.client, self.recorder, d, rss, self.rss.store.get,
                lambda uid: self.pods.store.by_index(OWNER_INDEX, uid),
                lambda seconds: self.queue.add_after(key, seconds)).run()


def start(ctx: ControllerContext) -> None:
    DeploymentController(ctx).start()
