"""core/v1 Events, with the involvedObject.* field selectors that `kubectl describe` uses."""
from __future__ import annotations

from kubeapi.status import invalid_value, required

from .strategy import Strategy


class EventStrategy(Strategy):
    kind = "Event"
    field_labels = frozenset({
        "metadata.name", "metadata.namespace", "involvedObject.kind",
        "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
        "involvedObject.apiVersion", "involvedObject.resourceVersion",
        "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"})

    def validate(self, obj: dict) -> list[dict]:
        involved = obj.get("involvedObject")
        if not isinstance(involved, dict):
            return [required("involvedObject")]
        ns = obj["metadata"].get("namespace")
        if involved.get("namespace") and involved["namespace"] != ns:
            return [invalid_value("involvedObject.namespace", involved["namespace"],
                                  "does not match event.namespace")]
        return []

    def fields(self, obj: dict) -> dict[str, str]:
        involved = obj.get("involvedObject") or {}
        out = super().fields(obj)
        for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion",
                  "fieldPath"):
            out["involvedObject." + f] = str(involved.get(f, ""))
        out["reason"] = obj.get("reason", "")
        out["reportingComponent"] = obj.get("reportingComponent", "")
        out["source"] = (obj.get("source") or {}).get("component", "")
        out["type"] = obj.get("type", "")
        return out
