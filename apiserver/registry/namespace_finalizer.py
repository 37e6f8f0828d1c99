"""Finalizing a Terminating namespace: what it still holds is deleted, then the namespace."""
from __future__ import annotations

from kubeapi.status import ApiError

from .store import Store


def finalize_namespace(stores: dict[str, Store], name: str) -> dict | None:
    """Deletes what a Terminating namespace still holds; removes the namespace once empty.
    Returns the removed namespace, or None while pods are still terminating."""
    remaining = 0
    for plural, store in stores.items():
        if not store.rtype.namespaced:
            continue
        for obj in store.list(name).items:
            try:
                # as kube's namespace deleter: Background, so that no orphan or foreground
                # finalizer keeps an object of a namespace that is gone
                left = store.delete(name, obj["metadata"]["name"],
                                    {"propagationPolicy": "Background"})
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
