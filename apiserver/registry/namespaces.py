"""Namespaces: DNS-1123 label names, cluster-scoped, phase Active until deletion starts."""
from __future__ import annotations

from kubeapi import validation

from .strategy import Strategy


class NamespaceStrategy(Strategy):
    kind = "Namespace"
    namespaced = False
    has_status = True
    field_labels = frozenset({"metadata.name", "status.phase"})

    def name_errors(self, name: str, field: str) -> list[dict]:
        return validation.dns1123_label(name, field)

    def default(self, obj: dict) -> None:
        obj.setdefault("spec", {})
        status = obj.setdefault("status", {})
        status.setdefault("phase", "Active")

    def fields(self, obj: dict) -> dict[str, str]:
        return {"metadata.name": obj["metadata"].get("name", ""),
                "status.phase": obj.get("status", {}).get("phase", "")}
