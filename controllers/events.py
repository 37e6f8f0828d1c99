"""core/v1 Events from controllers, as client-go's EventRecorder writes them: named
<object>.<hex nanoseconds>, source.component and reportingController the controller's name; a
cluster-scoped object's events go to the default namespace. Failing to record never fails the
controller's work."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from kubeapi import timefmt
from kubeapi.restclient import ApiClient
from kubeapi.status import ApiError

log = logging.getLogger("events")


@dataclass
class EventRecorder:
    client: ApiClient
    component: str

    def event(self, obj: dict, type_: str, reason: str, message: str) -> None:
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace") or "default"
        now = timefmt.rfc3339()
        api_version = obj.get("apiVersion") or "v1"
        event = {
            "metadata": {"name": f"{meta.get('name', '')}.{time.time_ns():x}", "namespace": ns},
            "involvedObject": {"kind": obj.get("kind", ""), "apiVersion": api_version,
                               "name": meta.get("name", ""), "uid": meta.get("uid", ""),
                               "resourceVersion": meta.get("resourceVersion", ""),
                               **({"namespace": meta["namespace"]}
                                  if meta.get("namespace") else {})},
            "reason": reason, "message": message, "type": type_, "count": 1,
            "source": {"component": self.component},
            "firstTimestamp": now, "lastTimestamp": now,
            "reportingComponent": self.component, "reportingInstance": "",
        }
        try:
            self.client.create(f"/api/v1/namespaces/{ns}/events", event)
        except ApiError as e:
            log.warning("event %s on %s/%s not recorded: %s", reason, ns, meta.get("name"),
                        e.message)
