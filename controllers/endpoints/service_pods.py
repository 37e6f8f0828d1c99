"""What the EndpointSlice and Endpoints controllers share, as kube's endpoint utilities: which
pods a Service selects, whether a pod belongs in its endpoints, its readiness, the port a
Service port resolves to in a pod, and a queue of Service keys fed by Service and Pod events."""
from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable

from kubeapi.informer import NAMESPACE_INDEX, Informer, object_key, object_of, resource_path
from kubeapi.workqueue import RateLimitingQueue

from ..context import ControllerContext
from ..workers import start_workers

WORKERS = 2
HEADLESS_LABEL = "service.kubernetes.io/headless"


def selects(service: dict, pod: dict) -> bool:
    """A Service with a selector selects the pods of its namespace whose labels hold it."""
    selector = (service.get("spec") or {}).get("selector") or {}
    labels = pod["metadata"].get("labels") or {}
    return bool(selector) and service["metadata"].get("namespace") == \
        pod["metadata"].get("namespace") and all(labels.get(k) == v for k, v in selector.items())


def is_ready(pod: dict) -> bool:
    """podutil.IsPodReady: the Ready condition is True."""
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def pod_ips(pod: dict) -> list[str]:
    status = pod.get("status") or {}
    ips = [p.get("ip") for p in status.get("podIPs") or [] if p.get("ip")]
    return ips or ([status["podIP"]] if status.get("podIP") else [])


def family_ip(pod: dict, family: str) -> str:
    """The pod's first address of the family ("IPv4" or "IPv6"), or ""."""
    version = 6 if family == "IPv6" else 4
    for ip in pod_ips(pod):
        try:
            if ipaddress.ip_address(ip).version == version:
                return ip
        except ValueError:
            continue
    return ""


def in_endpoints(pod: dict, include_terminating: bool) -> bool:
    """endpointsliceutil.ShouldPodBeInEndpoints: an address, not finished for good."""
    if not pod_ips(pod):
        return False
    if not include_terminating and pod["metadata"].get("deletionTimestamp"):
        return False
    phase = (pod.get("status") or {}).get("phase")
    policy = (pod.get("spec") or {}).get("restartPolicy", "Always")
    if policy == "Never":
        return phase not in ("Failed", "Succeeded")
    if policy == "OnFailure":
        return phase != "Succeeded"
    return True


def find_port(pod: dict, service_port: dict) -> int | None:
    """podutil.FindPort: a number as it is; a name looked up in the pod's container ports of
    the same protocol; None when the pod has no such port."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol", "TCP")
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target and port.get("protocol", "TCP") == protocol:
                return port.get("containerPort")
    return None


def hostname(pod: dict, service: dict) -> str:
    """A pod's hostname is published when its subdomain is the Service's name."""
    spec = pod.get("spec") or {}
    if spec.get("hostname") and spec.get("subdomain") == service["metadata"]["name"] and \
            pod["metadata"].get("namespace") == service["metadata"].get("namespace"):
        return spec["hostname"]
    return ""


def target_ref(pod: dict) -> dict:
    meta = pod["metadata"]
    return {"kind": "Pod", "namespace": meta.get("namespace", ""), "name": meta["name"],
            "uid": meta.get("uid", "")}


def service_labels(service: dict) -> dict[str, str]:
    """The Service's labels, plus the headless marker, as both controllers copy them."""
    labels = dict(service["metadata"].get("labels") or {})
    if (service.get("spec") or {}).get("clusterIP") == "None":
        labels[HEADLESS_LABEL] = ""
    else:
        labels.pop(HEADLESS_LABEL, None)
    return labels


class ServiceSyncer:
    """A work queue of Service keys ("ns/name"): queued on the Service's events and on those of
    every pod it selects (before and after a change of labels), worked by `sync(key)`."""

    def __init__(self, ctx: ControllerContext, name: str, log: logging.Logger) -> None:
        self.ctx = ctx
        self.name = name
        self.log = log
        self.services = ctx.informers.informer(resource_path("", "v1", "services"))
        self.pods = ctx.informers.informer(resource_path("", "v1", "pods"))
        self.queue = RateLimitingQueue(name=name)
        self.services.add_event_handler(
            on_add=self._service_event, on_update=lambda old, new: self._service_event(new),
            on_delete=self._service_event)
        self.pods.add_event_handler(on_add=self._pod_event, on_update=self._pod_update,
                                    on_delete=self._pod_event)

    def enqueue_all(self) -> None:
        for service in self.services.store.list():
            self.queue.add(object_key(service))

    def _service_event(self, item: object) -> None:
        self.queue.add(object_key(object_of(item)))

    def _services_of(self, pod: dict) -> list[str]:
        namespace = pod["metadata"].get("namespace", "")
        return [object_key(s) for s in self.services.store.by_index(NAMESPACE_INDEX, namespace)
                if selects(s, pod)]

    def _pod_event(self, item: object) -> None:
        for key in self._services_of(object_of(item)):
            self.queue.add(key)

    def _pod_update(self, old: dict, new: dict) -> None:
        for key in set(self._services_of(old)) | set(self._services_of(new)):
            self.queue.add(key)

    def start(self, sync: Callable[[str], None], *informers: Informer) -> None:
        start_workers(self.ctx, self.name, self.queue, sync,
                      [self.services, self.pods, *informers], WORKERS, self.log)
