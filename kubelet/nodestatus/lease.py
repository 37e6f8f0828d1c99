"""The node's heartbeat: a Lease named after the node in kube-node-lease, owned by the Node,
renewed every nodeLeaseDurationSeconds / 4 (10 s), retried with back-off (200 ms doubling to
7 s) while the API server does not answer, as the kubelet's nodelease controller does."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from kubeapi import timefmt
from kubeapi.restclient import ApiClient
from kubeapi.status import ApiError

log = logging.getLogger("kubelet.lease")

NAMESPACE = "kube-node-lease"


class LeaseRenewer:
    def __init__(self, client: ApiClient, node_name: str, duration: int,
                 node_uid: Callable[[], str], registered: threading.Event) -> None:
        self.client = client
        self.node_name = node_name
        self.duration = duration
        self.node_uid = node_uid
        self.registered = registered
        self.path = f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/{node_name}"

    def renew_once(self) -> None:
        lease = self._lease()
        try:
            self.client.patch(self.path, lease)
        except ApiError as e:
            if e.code != 404:
                raise
            lease.update(apiVersion="coordination.k8s.io/v1", kind="Lease")
            self.client.create(f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases",
                               lease)

    def _lease(self) -> dict:
        meta = {"name": self.node_name, "namespace": NAMESPACE,
                "ownerReferences": [{"apiVersion": "v1", "kind": "Node",
                                     "name": self.node_name, "uid": self.node_uid()}]}
        return {"metadata": meta,
                "spec": {"holderIdentity": self.node_name, "leaseDurationSeconds": self.duration,
                         "renewTime": timefmt.micro()}}

    def run(self, stop: threading.Event) -> None:
        """Renews from the Node's registration (the Lease is owned by the Node) until stop."""
        while not self.registered.wait(1.0):
            if stop.is_set():
                return
        interval = self.duration / 4
        delay = 0.2
        wait = 0.0
        while not stop.wait(wait):
            try:
                self.renew_once()
                delay = 0.2
                wait = interval
            except ApiError as e:
                log.info("lease renewal failed, will retry in %.1f s: %s", delay, e)
                wait = delay
                delay = min(delay * 2, 7.0)
