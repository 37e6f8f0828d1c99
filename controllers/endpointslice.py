"""The EndpointSlice controller, as kube's: for every Service with a selector, EndpointSlices
`<service>-<5 random>` (labels kubernetes.io/service-name and endpointslice.kubernetes.io/
managed-by, owned by the Service) holding the pods it selects that have an IP: their conditions
(ready, serving, terminating as kube computes them), node, zone, targetRef and the ports the
Service's ports resolve to in each pod (pods with other resolved ports go to other slices), at
most 100 endpoints per slice; a Service without endpoints keeps one empty placeholder slice.

Driven by Service, Pod, EndpointSlice and Node events. Endpoints stay in the slice they are in
(slices are filled before new ones are made), as kube's reconciler limits churn. Slices this
controller wrote are tracked by resourceVersion until the informer shows them, so that a sync
on a stale cache waits instead of creating twice (kube's endpointSliceTracker).
"""
from __future__ import annotations

import logging
import threading

from kubeapi.informer import NAMESPACE_INDEX, DeletedFinalStateUnknown, resource_path
from kubeapi.status import ApiError

from .context import ControllerContext
from .service_pods import (ServiceSyncer, family_ip, find_port, hostname, in_endpoints, is_ready,
                           service_labels, target_ref)

log = logging.getLogger("endpointslice-controller")

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"
ZONE_LABEL = "topology.kubernetes.io/zone"
MAX_ENDPOINTS_PER_SLICE = 100
_DELETED = -1
_STALE_RETRY = 0.05  # seconds before a sync that found the cache behind its writes runs again


def _obj(item: object) -> dict:
    return item.obj if isinstance(item, DeletedFinalStateUnknown) else item  # type: ignore


def _service_key(slice_: dict) -> list[str]:
    labels = slice_["metadata"].get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) != MANAGED_BY or not labels.get(SERVICE_NAME_LABEL):
        return []
    return [f"{slice_['metadata'].get('namespace', '')}/{labels[SERVICE_NAME_LABEL]}"]


def _ports_key(ports: list[dict] | None) -> tuple:
    return tuple(sorted((p.get("name") or "", p.get("port") or 0, p.get("protocol", "TCP"),
                         p.get("appProtocol") or "") for p in ports or []))


def _ref_key(endpoint: dict) -> str:
    ref = endpoint.get("targetRef") or {}
    return f"{ref.get('name', '')}/{','.join(endpoint.get('addresses') or [])}"


class EndpointSliceController:
    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.syncer = ServiceSyncer(ctx, "endpointslice-controller", log)
        self.slices = ctx.informers.informer(
            resource_path("discovery.k8s.io", "v1", "endpointslices"))
        self.nodes = ctx.informers.informer(resource_path("", "v1", "nodes"))
        self.slices.add_indexer("endpointslice-service", _service_key)
        self.slices.add_event_handler(on_add=self._slice_event,
                                      on_update=lambda old, new: self._slice_event(new),
                                      on_delete=self._slice_deleted)
        self.nodes.add_event_handler(on_update=self._node_update)
        # service key -> slice name -> the resourceVersion we wrote (or _DELETED)
        self._written: dict[str, dict[str, int]] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        self.syncer.start(self.sync, self.slices, self.nodes)

    # events

    def _slice_event(self, slice_: dict) -> None:
        for key in _service_key(slice_):
            self.syncer.queue.add(key)

    def _slice_deleted(self, item: object) -> None:
        slice_ = _obj(item)
        for key in _service_key(slice_):
            with self._lock:
                self._written.get(key, {}).pop(slice_["metadata"]["name"], None)
            self.syncer.queue.add(key)

    def _node_update(self, old: dict, new: dict) -> None:
        if (old["metadata"].get("labels") or {}).get(ZONE_LABEL) != \
                (new["metadata"].get("labels") or {}).get(ZONE_LABEL):
            self.syncer.enqueue_all()

    # the cache against our writes

    def _stale(self, key: str, slices: list[dict]) -> bool:
        cached = {s["metadata"]["name"]: int(s["metadata"].get("resourceVersion") or 0)
                  for s in slices}
        with self._lock:
            written = self._written.get(key, {})
            for name, rv in list(written.items()):
                if (rv == _DELETED and name not in cached) or \
                        (rv != _DELETED and cached.get(name, 0) >= rv):
                    del written[name]
            if not written:
                self._written.pop(key, None)
            return bool(written)

    def _wrote(self, key: str, name: str, rv: int) -> None:
        with self._lock:
            self._written.setdefault(key, {})[name] = rv

    # sync

    def sync(self, key: str) -> None:
        slices = self.slices.store.by_index("endpointslice-service", key)
        if self._stale(key, slices):
            self.syncer.queue.add_after(key, _STALE_RETRY)
            return
        service = self.syncer.services.store.get(key)
        spec = (service or {}).get("spec") or {}
        if service is None or not spec.get("selector") or spec.get("type") == "ExternalName":
            for slice_ in slices:
                self._delete(key, slice_)
            return
        families = spec.get("ipFamilies") or ["IPv4"]
        for slice_ in slices:
            if slice_.get("addressType") not in families:
                self._delete(key, slice_)
        for family in families:
            self._reconcile(key, service, family,
                            [s for s in slices if s.get("addressType") == family])

    def _desired(self, service: dict, family: str) -> dict[tuple, tuple[list, dict]]:
        """ports key -> (ports, {ref key: endpoint}) for the pods the Service selects."""
        spec = service["spec"]
        publish = bool(spec.get("publishNotReadyAddresses"))
        groups: dict[tuple, tuple[list, dict]] = {}
        for pod in self.syncer.pods.store.by_index(NAMESPACE_INDEX,
                                                   service["metadata"]["namespace"]):
            if not self._selected(service, pod) or not in_endpoints(pod, True):
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
            group = groups.setdefault(_ports_key(ports), (ports, {}))
            group[1][_ref_key(endpoint)] = endpoint
        return groups

    @staticmethod
    def _selected(service: dict, pod: dict) -> bool:
        labels = pod["metadata"].get("labels") or {}
        return all(labels.get(k) == v for k, v in service["spec"]["selector"].items())

    def _reconcile(self, key: str, service: dict, family: str, slices: list[dict]) -> None:
        groups = self._desired(service, family)
        if not groups:
            # A Service without endpoints keeps one empty slice, as kube's placeholder.
            keep = next(iter(sorted(slices, key=lambda s: s["metadata"]["name"])), None)
            for slice_ in slices:
                if slice_ is not keep:
                    self._delete(key, slice_)
            self._write(key, service, family, keep, [], [])
            return
        by_ports: dict[tuple, list[dict]] = {}
        for slice_ in slices:
            by_ports.setdefault(_ports_key(slice_.get("ports")), []).append(slice_)
        for ports_key, slices_of in by_ports.items():
            if ports_key not in groups:
                for slice_ in slices_of:
                    self._delete(key, slice_)
        for ports_key, (ports, wanted) in groups.items():
            remaining = dict(wanted)
            plans: list[tuple[dict | None, list[dict]]] = []
            for slice_ in sorted(by_ports.get(ports_key, []), key=lambda s: s["metadata"]["name"]):
                kept = [remaining.pop(_ref_key(ep)) for ep in slice_.get("endpoints") or []
                        if _ref_key(ep) in remaining]
                plans.append((slice_, kept))
            fresh = [remaining[k] for k in sorted(remaining)]
            for _, kept in plans:
                room = MAX_ENDPOINTS_PER_SLICE - len(kept)
                kept.extend(fresh[:room])
                fresh = fresh[room:]
            while fresh:
                plans.append((None, fresh[:MAX_ENDPOINTS_PER_SLICE]))
                fresh = fresh[MAX_ENDPOINTS_PER_SLICE:]
            for slice_, endpoints in plans:
                if not endpoints and slice_ is not None:
                    self._delete(key, slice_)
                else:
                    self._write(key, service, family, slice_, ports, endpoints)

    def _write(self, key: str, service: dict, family: str, current: dict | None,
               ports: list[dict], endpoints: list[dict]) -> None:
        meta = service["metadata"]
        labels = {**service_labels(service), SERVICE_NAME_LABEL: meta["name"],
                  MANAGED_BY_LABEL: MANAGED_BY}
        owner = [{"apiVersion": "v1", "kind": "Service", "name": meta["name"],
                  "uid": meta.get("uid", ""), "controller": True, "blockOwnerDeletion": True}]
        base = f"/apis/discovery.k8s.io/v1/namespaces/{meta['namespace']}/endpointslices"
        if current is None:
            body = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"generateName": f"{meta['name']}-", "labels": labels,
                                 "ownerReferences": owner},
                    "addressType": family, "endpoints": endpoints}
            if ports:
                body["ports"] = ports
            created = self.ctx.client.create(base, body)
            self._wrote(key, created["metadata"]["name"],
                        int(created["metadata"]["resourceVersion"]))
            return
        same = (current.get("endpoints") or []) == endpoints and \
            _ports_key(current.get("ports")) == _ports_key(ports) and \
            (current.get("ports") or []) == ports and \
            (current["metadata"].get("labels") or {}) == labels and \
            current["metadata"].get("ownerReferences") == owner
        if same:
            return
        body = {**current, "metadata": {**current["metadata"], "labels": labels,
                                         "ownerReferences": owner},
                "endpoints": endpoints}
        if ports:
            body["ports"] = ports
        else:
            body.pop("ports", None)
        name = current["metadata"]["name"]
        updated = self.ctx.client.request("PUT", f"{base}/{name}", body)
        self._wrote(key, name, int(updated["metadata"]["resourceVersion"]))

    def _delete(self, key: str, slice_: dict) -> None:
        meta = slice_["metadata"]
        try:
            self.ctx.client.delete(f"/apis/discovery.k8s.io/v1/namespaces/{meta['namespace']}"
                                   f"/endpointslices/{meta['name']}",
                                   {"preconditions": {"uid": meta.get("uid")}})
        except ApiError as e:
            if e.code != 404:
                raise
            return
        self._wrote(key, meta["name"], _DELETED)


def start(ctx: ControllerContext) -> None:
    EndpointSliceController(ctx).start()

