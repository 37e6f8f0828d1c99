"""The EndpointSlice controller, as kube's: for every Service with a selector, EndpointSlices
`<service>-<5 random>` (labels kubernetes.io/service-name and endpointslice.kubernetes.io/
managed-by, owned by the Service) holding the pods it selects that have an IP: their conditions
(ready, serving, terminating as kube computes them), node, zone, targetRef and the ports the
Service's ports resolve to in each pod (pods with other resolved ports go to other slices), at
most 100 endpoints per slice; a Service without endpoints keeps one empty placeholder slice.
Driven by Service, Pod, EndpointSlice and Node events; slices are written by slice_writer.
"""
from __future__ import annotations

import logging

from kubeapi.informer import NAMESPACE_INDEX, object_of, resource_path

from ..context import ControllerContext
from .service_pods import (ServiceSyncer, family_ip, find_port, hostname, in_endpoints, is_ready,
                           selects, service_labels, target_ref)
from .slice_writer import Desired, SliceWriter

log = logging.getLogger("endpointslice-controller")

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"
ZONE_LABEL = "topology.kubernetes.io/zone"
_STALE_RETRY = 0.05  # seconds before a sync that found the cache behind its writes runs again
_INDEX = "endpointslice-service"


def owner_key(slice_: dict, managed_by: str) -> list[str]:
    """"namespace/service" of a slice this manager wrote, for an informer index."""
    labels = slice_["metadata"].get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) != managed_by or not labels.get(SERVICE_NAME_LABEL):
        return []
    return [f"{slice_['metadata'].get('namespace', '')}/{labels[SERVICE_NAME_LABEL]}"]


class EndpointSliceController:
    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.syncer = ServiceSyncer(ctx, "endpointslice-controller", log)
        self.slices = ctx.informers.informer(
            resource_path("discovery.k8s.io", "v1", "endpointslices"))
        self.nodes = ctx.informers.informer(resource_path("", "v1", "nodes"))
        self.slices.add_indexer(_INDEX, lambda s: owner_key(s, MANAGED_BY))
        self.slices.add_event_handler(on_add=self._slice_event,
                                      on_update=lambda old, new: self._slice_event(new),
                                      on_delete=self._slice_deleted)
        self.nodes.add_event_handler(on_update=self._node_update)
        self.writer = SliceWriter(ctx.client, self.slices)

    def start(self) -> None:
        self.syncer.start(self.sync, self.slices, self.nodes)

    def _slice_event(self, slice_: dict) -> None:
        for key in owner_key(slice_, MANAGED_BY):
            self.syncer.queue.add(key)

    def _slice_deleted(self, item: object) -> None:
        slice_ = object_of(item)
        for key in owner_key(slice_, MANAGED_BY):
            self.writer.forget(key, slice_["metadata"]["name"])
            self.syncer.queue.add(key)

    def _node_update(self, old: dict, new: dict) -> None:
        if (old["metadata"].get("labels") or {}).get(ZONE_LABEL) != \
                (new["metadata"].get("labels") or {}).get(ZONE_LABEL):
            self.syncer.enqueue_all()

    def sync(self, key: str) -> None:
        slices = self.slices.store.by_index(_INDEX, key)
        if self.writer.stale(key, slices):
            self.syncer.queue.add_after(key, _STALE_RETRY)
            return
        service = self.syncer.services.store.get(key)
        spec = (service or {}).get("spec") or {}
        if service is None or not spec.get("selector") or spec.get("type") == "ExternalName":
            for slice_ in slices:
                self.writer.delete(key, slice_)
            return
        families = spec.get("ipFamilies") or ["IPv4"]
        for slice_ in slices:
            if slice_.get("addressType") not in families:
                self.writer.delete(key, slice_)
        for family in families:
            self.writer.reconcile(key, self._desired(service, family),
                                  [s for s in slices if s.get("addressType") == family])

    def _desired(self, service: dict, family: str) -> Desired:
        meta, spec = service["metadata"], service["spec"]
        want = Desired(meta["namespace"], meta["name"], family,
                       {**service_labels(service), SERVICE_NAME_LABEL: meta["name"],
                        MANAGED_BY_LABEL: MANAGED_BY},
                       [{"apiVersion": "v1", "kind": "Service", "name": meta["name"],
                         "uid": meta.get("uid", ""), "controller": True,
                         "blockOwnerDeletion": True}])
        publish = bool(spec.get("publishNotReadyAddresses"))
        for pod in self.syncer.pods.store.by_index(NAMESPACE_INDEX, meta["namespace"]):
            if not selects(service, pod) or not in_endpoints(pod, True):
                continue
            ip = family_ip(pod, family)
            if not ip:
                continue
            ports = []
            for sp in spec.get("ports") or []:
                number = find_port(pod, sp)
                if number is None:
                    continue
                port = {"name": sp.get("name") or "", "port": number,
                        "protocol": sp.get("protocol", "TCP")}
                if sp.get("appProtocol"):
                    port["appProtocol"] = sp["appProtocol"]
                ports.append(port)
            terminating = bool(pod["metadata"].get("deletionTimestamp"))
            serving = publish or is_ready(pod)
            endpoint: dict = {"addresses": [ip], "conditions": {
                "ready": publish or (serving and not terminating), "serving": serving,
                "terminating": terminating}}
            if hostname(pod, service):
                endpoint["hostname"] = hostname(pod, service)
            endpoint["targetRef"] = target_ref(pod)
            node_name = (pod.get("spec") or {}).get("nodeName")
            if node_name:
                endpoint["nodeName"] = node_name
                node = self.nodes.store.get(node_name)
                zone = ((node or {}).get("metadata", {}).get("labels") or {}).get(ZONE_LABEL)
                if zone:
                    endpoint["zone"] = zone
            want.add(ports, endpoint)
        return want


def start(ctx: ControllerContext) -> None:
    EndpointSliceController(ctx).start()
