"""node.k8s.io/v1 RuntimeClasses (cluster-scoped): the handler a pod's runtimeClassName names,
a DNS-1123 label fixed once created (kube's ValidateRuntimeClass and its update rule). A
kubelet lists and watches them to resolve its pods' handlers."""
from __future__ import annotations

from kubeapi import validation
from kubeapi.status import invalid_value, required

from .strategy import Strategy


class RuntimeClassStrategy(Strategy):
    kind = "RuntimeClass"
    namespaced = False

    def validate(self, obj: dict) -> list[dict]:
        handler = obj.get("handler")
        if not handler:
            return [required("handler")]
        return validation.dns1123_label(handler, "handler")

    def validate_update(self, new: dict, old: dict) -> list[dict]:
        errors = self.validate(new)
        if new.get("handler") != old.get("handler"):
            errors.append(invalid_value("handler", new.get("handler"), "field is immutable"))
        return errors
