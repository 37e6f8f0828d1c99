"""Namespaces: DNS-1123 label names, cluster-scoped, phase Active until deletion starts; then
finalizing empties a Terminating namespace and removes it."""
from __future__ import annotations

from kubeapi import validation
from kubeapi.status import ApiError

from .store import Store
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


def finalize_namespace(stores: dict[str, Store], name: str) -> dict | None:
    """Deletes what a Terminating namespace still holds; removes the namespace once empty.
    Returns the removed namespace, or None while pods are still terminating."""
    remaining = 0
    for plural, store in stores.items():
        if not store.rtype.namespaced:
            continue
        for obj in store.list(name).items:
            try:
                left = store.delete(name, obj["metadata"]["name"])
            except ApiError as e:
                if e.code == 404:
                    continue
                raise
            if plural == "pods" and left["metadata"].get("deletionTimestamp") and \
                    store.storage.get(store.rtype.key(name, left["metadata"]["name"])):
                remaining += 1
    if remaining:
        return None
    try:
        return stores["namespaces"].delete("", name)
    except ApiError as e:
        if e.code == 404:
            return None
        raise
