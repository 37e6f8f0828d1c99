"""The cluster as the DNS server sees it: informers (list + watch) of Namespaces, Services and
EndpointSlices, read at query time through their indexes, so that a change answers as soon as
its watch event arrives, without a rebuild."""
from __future__ import annotations

import threading
import time

from kubeapi.informer import InformerFactory, resource_path
from kubeapi.restclient import ApiClient

from clusterdns.records import SERVICE_NAME_LABEL, cluster_ips, normalize_ip

BY_SERVICE = "service"
BY_IP = "ip"


def _slice_service(slc: dict) -> list[str]:
    meta = slc.get("metadata") or {}
    name = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return [f"{meta.get('namespace', '')}/{name}"] if name else []


def _slice_ips(slc: dict) -> list[str]:
    ips = {normalize_ip(a) for ep in slc.get("endpoints") or [] for a in ep.get("addresses") or []}
    return [ip for ip in ips if ip]


def _service_ips(svc: dict) -> list[str]:
    return [ip for ip in cluster_ips(svc) if ip and ip != "None"]


class InformerView:
    """A `records.ClusterView` over three informers of one factory (started by `start`)."""

    def __init__(self, client: ApiClient) -> None:
        self.factory = InformerFactory(client)
        self.namespaces = self.factory.informer(resource_path("", "v1", "namespaces"))
        self.services = self.factory.informer(resource_path("", "v1", "services"))
        self.slices = self.factory.informer(
            resource_path("discovery.k8s.io", "v1", "endpointslices"))
        self.services.add_indexer(BY_IP, _service_ips)
        self.slices.add_indexer(BY_SERVICE, _slice_service)
        self.slices.add_indexer(BY_IP, _slice_ips)
        self._lock = threading.Lock()
        self._modified = int(time.time())
        self._generation = 0
        for informer in (self.namespaces, self.services, self.slices):
            informer.add_event_handler(on_add=self._touch, on_update=self._touch,
                                       on_delete=self._touch)

    def start(self) -> None:
        self.factory.start()

    def wait_for_sync(self, timeout: float) -> bool:
        return self.factory.wait_for_sync(timeout)

    def stop(self) -> None:
        self.factory.stop()

    def _touch(self, *_: object) -> None:
        # The SOA serial: the time of the last change, as CoreDNS's Modified().
        with self._lock:
            self._modified = int(time.time())
            self._generation += 1

    # -- records.ClusterView ------------------------------------------------------------------

    def synced(self) -> bool:
        return all(i.has_synced() for i in (self.namespaces, self.services, self.slices))

    def serial(self) -> int:
        with self._lock:
            return self._modified

    def generation(self) -> int:
        return self._generation   # an int read: atomic, and the fast path takes no lock

    def namespace_exists(self, name: str) -> bool:
        return self.namespaces.store.get(name) is not None

    def service(self, namespace: str, name: str) -> dict | None:
        return self.services.store.get(f"{namespace}/{name}")

    def endpoint_slices(self, namespace: str, service: str) -> list[dict]:
        return self.slices.store.by_index(BY_SERVICE, f"{namespace}/{service}")

    def services_by_ip(self, ip: str) -> list[dict]:
        return self.services.store.by_index(BY_IP, ip)

    def endpoint_slices_by_ip(self, ip: str) -> list[dict]:
        return self.slices.store.by_index(BY_IP, ip)
