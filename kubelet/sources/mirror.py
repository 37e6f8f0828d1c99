"""Mirror pods: with an API server, each static pod has a copy there (same name and namespace,
annotation kubernetes.io/config.mirror = the static pod's config hash, owned by the Node) so
that kubectl sees it; the kubelet writes the static pod's status to it. A mirror that is
deleted, being deleted or of an older manifest is replaced; one whose static pod is gone is
deleted. The kubelet never runs a mirror pod: the API source hands them here instead."""
from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable

from kubeapi.restclient import ApiClient, Unavailable
from kubeapi.status import ApiError
from kubelet import pods
from kubelet.pods import Pod

log = logging.getLogger("kubelet.mirror")

RESYNC = 10.0          # seconds between rounds when nothing changed
RETRY = 2.0            # after a failed API call


def _key(pod: Pod) -> str:
    return f"{pod.namespace}/{pod.name}"


def mirror_of(static: Pod, node_name: str, node_uid: str) -> dict:
    """The mirror pod to create for a static pod."""
    annotations = dict(static.annotations)
    annotations[pods.CONFIG_MIRROR] = static.config_hash
    metadata = {"name": static.name, "namespace": static.namespace,
                "labels": dict(static.labels), "annotations": annotations,
                "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node_name,
                                     "uid": node_uid, "controller": True}]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": copy.deepcopy(static.obj["spec"])}


class MirrorPods:
    def __init__(self, client: ApiClient, node_name: str, node_uid: Callable[[], str],
                 created: Callable[[str], None]) -> None:
        """created(static pod uid) is told when a new mirror exists (its status must be
        written again)."""
        self.client = client
        self.node_name = node_name
        self.node_uid = node_uid
        self.created = created
        self._static: dict[str, Pod] = {}      # namespace/name -> static pod
        self._mirrors: dict[str, Pod] = {}     # namespace/name -> mirror pod in the API
        self._cond = threading.Condition()
        self._woken = False

    # -- what the sources tell ------------------------------------------------------------------

    def set_static(self, pod_list: list[Pod]) -> None:
        with self._cond:
            self._static = {_key(pod): pod for pod in pod_list}
            self._wake()

    def set_mirrors(self, pod_list: list[Pod]) -> None:
        with self._cond:
            self._mirrors = {_key(pod): pod for pod in pod_list}
            self._wake()

    def mirror_event(self, kind: str, pod: Pod) -> None:
        with self._cond:
            current = self._mirrors.get(_key(pod))
            if kind == "DELETED":
                if current is not None and current.uid == pod.uid:
                    del self._mirrors[_key(pod)]
            else:
                self._mirrors[_key(pod)] = pod
            self._wake()

    def uid(self, namespace: str, name: str, static_uid: str) -> str | None:
        """The uid of the static pod's current mirror (where its status goes), if any."""
        with self._cond:
            mirror = self._mirrors.get(f"{namespace}/{name}")
            if mirror is None or self._outdated(mirror, static_uid):
                return None
            return mirror.uid

    def _wake(self) -> None:
        self._woken = True
        self._cond.notify()

    # -- reconciling ----------------------------------------------------------------------------

    @staticmethod
    def _outdated(mirror: Pod, static_uid: str) -> bool:
        return mirror.mirror_hash != static_uid or mirror.is_deleted

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            with self._cond:
                self._woken = False
            try:
                self.reconcile()
                delay = RESYNC
            except ApiError as e:
                log.info("mirror pods: %s; again in %.0f s", e, RETRY)
                delay = RETRY
            with self._cond:
                if not self._woken and not stop.is_set():
                    self._cond.wait(delay)

    def stop(self) -> None:
        with self._cond:
            self._wake()

    def reconcile(self) -> None:
        with self._cond:
            static, mirrors = dict(self._static), dict(self._mirrors)
        for key, pod in static.items():
            mirror = mirrors.get(key)
            if mirror is not None and self._outdated(mirror, pod.uid):
                self._delete(mirror)
                mirror = None
            if mirror is None:
                self._create(pod)
        for key, mirror in mirrors.items():
            if key not in static:
                log.info("deleting orphaned mirror pod %s", key)
                self._delete(mirror)

    def _create(self, static: Pod) -> None:
        node_uid = self.node_uid()
        if not node_uid:
            # the kubelet's rule: a mirror pod is owned by its Node, so it waits for it
            raise Unavailable(f"node {self.node_name} not registered yet")
        body = mirror_of(static, self.node_name, node_uid)
        try:
            made = Pod(self.client.create(f"/api/v1/namespaces/{static.namespace}/pods", body))
        except ApiError as e:
            if e.code == 409:     # one exists that the watch has not shown yet
                return
            raise
        log.info("created mirror pod %s", _key(static))
        with self._cond:
            self._mirrors[_key(made)] = made
        self.created(static.uid)

    def _delete(self, mirror: Pod) -> None:
        try:
            self.client.delete(f"/api/v1/namespaces/{mirror.namespace}/pods/{mirror.name}",
                               {"gracePeriodSeconds": 0,
                                "preconditions": {"uid": mirror.uid}})
        except ApiError as e:
            if e.code not in (404, 409):
                raise
        with self._cond:
            if (current := self._mirrors.get(_key(mirror))) is not None and \
                    current.uid == mirror.uid:
                del self._mirrors[_key(mirror)]
