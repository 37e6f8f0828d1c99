"""The EndpointSlice mirroring controller, as kube's: the v1 Endpoints of a Service without a
selector (written by a user or another controller) are mirrored into EndpointSlices
`<name>-<5 random>` owned by the Endpoints, labelled kubernetes.io/service-name and
endpointslice.kubernetes.io/managed-by=endpointslicemirroring-controller.k8s.io, so that
consumers of slices (the service proxy, cluster DNS) see them too. Addresses are ready,
notReadyAddresses not; each subset's ports go with its addresses. Endpoints labelled
endpointslice.kubernetes.io/skip-mirror=true, and those of Services with a selector (the
EndpointSlice controller's), are not mirrored."""
from __future__ import annotations

import logging

from kubeapi.informer import object_key, object_of, resource_path
from kubeapi.workqueue import RateLimitingQueue

from ..context import ControllerContext
from ..workers import start_workers
from .endpointslice import MANAGED_BY_LABEL, SERVICE_NAME_LABEL, owner_key
from .service_pods import WORKERS
from .slice_writer import Desired, SliceWriter

log = logging.getLogger("endpointslice-mirroring-controller")

MANAGED_BY = "endpointslicemirroring-controller.k8s.io"
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
_INDEX = "endpointslice-mirrored"
_STALE_RETRY = 0.05


def _family(ip: str) -> str:
    return "IPv6" if ":" in ip else "IPv4"


def desired(endpoints: dict) -> dict[str, Desired]:
    """Address type -> the slices' content for these Endpoints."""
    meta = endpoints["metadata"]
    labels = {k: v for k, v in (meta.get("labels") or {}).items()
              if k not in (MANAGED_BY_LABEL, SERVICE_NAME_LABEL)}
    labels.update({SERVICE_NAME_LABEL: meta["name"], MANAGED_BY_LABEL: MANAGED_BY})
    owner = [{"apiVersion": "v1", "kind": "Endpoints", "name": meta["name"],
              "uid": meta.get("uid", ""), "controller": True, "blockOwnerDeletion": True}]
    wants: dict[str, Desired] = {}
    for subset in endpoints.get("subsets") or []:
        ports = []
        for p in subset.get("ports") or []:
            port = {"name": p.get("name") or "", "port": p.get("port"),
                    "protocol": p.get("protocol", "TCP")}
            if p.get("appProtocol"):
                port["appProtocol"] = p["appProtocol"]
            ports.append(port)
        for key, ready in (("addresses", True), ("notReadyAddresses", False)):
            for address in subset.get(key) or []:
                ip = address.get("ip", "")
                endpoint: dict = {"addresses": [ip], "conditions": {"ready": ready}}
                for field in ("hostname", "nodeName", "targetRef"):
                    if address.get(field):
                        endpoint[field] = address[field]
                family = _family(ip)
                if family not in wants:
                    wants[family] = Desired(meta["namespace"], meta["name"], family, labels,
                                            owner)
                wants[family].add(ports, endpoint)
    return wants


class MirroringController:
    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.endpoints = ctx.informers.informer(resource_path("", "v1", "endpoints"))
        self.services = ctx.informers.informer(resource_path("", "v1", "services"))
        self.slices = ctx.informers.informer(
            resource_path("discovery.k8s.io", "v1", "endpointslices"))
        self.slices.add_indexer(_INDEX, lambda s: owner_key(s, MANAGED_BY))
        self.queue = RateLimitingQueue(name="endpointslice-mirroring-controller")
        self.writer = SliceWriter(ctx.client, self.slices)
        enqueue = lambda item: self.queue.add(object_key(object_of(item)))  # noqa: E731
        for informer in (self.endpoints, self.services):
            informer.add_event_handler(on_add=enqueue, on_update=lambda old, new: enqueue(new),
                                       on_delete=enqueue)
        self.slices.add_event_handler(on_add=self._slice_event,
                                      on_update=lambda old, new: self._slice_event(new),
                                      on_delete=self._slice_deleted)

    def _slice_event(self, slice_: dict) -> None:
        for key in owner_key(slice_, MANAGED_BY):
            self.queue.add(key)

    def _slice_deleted(self, item: object) -> None:
        slice_ = object_of(item)
        for key in owner_key(slice_, MANAGED_BY):
            self.writer.forget(key, slice_["metadata"]["name"])
            self.queue.add(key)

    def start(self) -> None:
        start_workers(self.ctx, "endpointslice-mirroring", self.queue, self.sync,
                      [self.endpoints, self.services, self.slices], WORKERS, log)

    def sync(self, key: str) -> None:
        slices = self.slices.store.by_index(_INDEX, key)
        if self.writer.stale(key, slices):
            self.queue.add_after(key, _STALE_RETRY)
            return
        endpoints = self.endpoints.store.get(key)
        service = self.services.store.get(key)
        mirror = endpoints is not None and service is not None and \
            not (service.get("spec") or {}).get("selector") and \
            (endpoints["metadata"].get("labels") or {}).get(SKIP_MIRROR_LABEL) != "true"
        wants = desired(endpoints) if mirror else {}
        for slice_ in slices:
            if slice_.get("addressType") not in wants:
                self.writer.delete(key, slice_)
        for family, want in wants.items():
            self.writer.reconcile(key, want,
                                  [s for s in slices if s.get("addressType") == family])


def start(ctx: ControllerContext) -> None:
    MirroringController(ctx).start()
