"""Writing a set of EndpointSlices to match what a controller wants, as kube's endpointslice
reconciler: endpoints stay in the slice they are in, slices with room are filled before new ones
(`<name>-<5 random>`) are made, at most 100 endpoints each, emptied slices go, and an owner with
no endpoints at all keeps one empty placeholder. Shared by the EndpointSlice controller (slices
of a Service's pods) and the mirroring controller (slices of a selectorless Service's Endpoints).

Writes are remembered by resourceVersion until the informer shows them (kube's
endpointSliceTracker): a sync that finds the cache behind its own writes waits instead of
creating the same slice twice.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

from kubeapi.informer import Informer
from kubeapi.restclient import ApiClient
from kubeapi.status import ApiError

MAX_ENDPOINTS_PER_SLICE = 100
_DELETED = -1


def ports_key(ports: list[dict] | None) -> tuple:
    return tuple(sorted((p.get("name") or "", p.get("port") or 0, p.get("protocol", "TCP"),
                         p.get("appProtocol") or "") for p in ports or []))


def endpoint_key(endpoint: dict) -> str:
    ref = endpoint.get("targetRef") or {}
    return f"{ref.get('name', '')}/{','.join(endpoint.get('addresses') or [])}"


@dataclass
class Desired:
    """What one owner's slices of one address type should hold."""
    namespace: str
    base_name: str             # slices are generateName'd "<base_name>-"
    address_type: str
    labels: dict[str, str]
    owner: list[dict]          # ownerReferences
    # ports key -> (ports, {endpoint key: endpoint})
    groups: dict[tuple, tuple[list, dict]] = field(default_factory=dict)

    def add(self, ports: list[dict], endpoint: dict) -> None:
        group = self.groups.setdefault(ports_key(ports), (ports, {}))
        group[1][endpoint_key(endpoint)] = endpoint


class SliceWriter:
    def __init__(self, client: ApiClient, slices: Informer) -> None:
        self.client = client
        self.slices = slices
        # owner key -> slice name -> the resourceVersion written (or _DELETED)
        self._written: dict[str, dict[str, int]] = {}
        self._lock = threading.Lock()

    def forget(self, key: str, name: str) -> None:
        """A slice's deletion was seen: nothing more to wait for on it."""
        with self._lock:
            self._written.get(key, {}).pop(name, None)

    def stale(self, key: str, slices: list[dict]) -> bool:
        """True while the cache lacks a write of ours for this owner."""
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

    def reconcile(self, key: str, want: Desired, slices: list[dict]) -> None:
        """Brings `slices` (the owner's current ones of want.address_type) to `want`."""
        if not want.groups:
            keep = min(slices, key=lambda s: s["metadata"]["name"], default=None)
            for slice_ in slices:
                if slice_ is not keep:
                    self.delete(key, slice_)
            self._write(key, want, keep, [], [])
            return
        by_ports: dict[tuple, list[dict]] = {}
        for slice_ in slices:
            by_ports.setdefault(ports_key(slice_.get("ports")), []).append(slice_)
        for key_of_ports, slices_of in by_ports.items():
            if key_of_ports not in want.groups:
                for slice_ in slices_of:
                    self.delete(key, slice_)
        for key_of_ports, (ports, wanted) in want.groups.items():
            remaining = dict(wanted)
            plans: list[tuple[dict | None, list[dict]]] = []
            for slice_ in sorted(by_ports.get(key_of_ports, []),
                                 key=lambda s: s["metadata"]["name"]):
                kept = [remaining.pop(endpoint_key(ep)) for ep in slice_.get("endpoints") or []
                        if endpoint_key(ep) in remaining]
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
                    self.delete(key, slice_)
                else:
                    self._write(key, want, slice_, ports, endpoints)

    def _write(self, key: str, want: Desired, current: dict | None, ports: list[dict],
               endpoints: list[dict]) -> None:
        base = f"/apis/discovery.k8s.io/v1/namespaces/{want.namespace}/endpointslices"
        if current is None:
            body = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"generateName": f"{want.base_name}-", "labels": want.labels,
                                 "ownerReferences": want.owner},
                    "addressType": want.address_type, "endpoints": endpoints}
            if ports:
                body["ports"] = ports
            created = self.client.create(base, body)
            self._wrote(key, created["metadata"]["name"],
                        int(created["metadata"]["resourceVersion"]))
            return
        if (current.get("endpoints") or []) == endpoints and \
                (current.get("ports") or []) == ports and \
                (current["metadata"].get("labels") or {}) == want.labels and \
                current["metadata"].get("ownerReferences") == want.owner:
            return
        body = {**current, "metadata": {**current["metadata"], "labels": want.labels,
                                         "ownerReferences": want.owner},
                "endpoints": endpoints}
        if ports:
            body["ports"] = ports
        else:
            body.pop("ports", None)
        name = current["metadata"]["name"]
        updated = self.client.request("PUT", f"{base}/{name}", body)
        self._wrote(key, name, int(updated["metadata"]["resourceVersion"]))

    def delete(self, key: str, slice_: dict) -> None:
        meta = slice_["metadata"]
        try:
            self.client.delete(f"/apis/discovery.k8s.io/v1/namespaces/{meta['namespace']}"
                               f"/endpointslices/{meta['name']}",
                               {"preconditions": {"uid": meta.get("uid")}})
        except ApiError as e:
            if e.code != 404:
                raise
            return
        self._wrote(key, meta["name"], _DELETED)
