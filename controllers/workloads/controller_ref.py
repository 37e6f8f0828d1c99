"""Claiming dependents, as kube's ControllerRefManager: an owner (ReplicaSet, Deployment) keeps
the objects it controls that its selector still matches, releases those it no longer matches,
and adopts orphans it matches, each through a strategic merge patch of ownerReferences that
carries the dependent's uid (so that a replaced object of the same name is left alone). Before
adopting, the owner is read again from the API: a cache may still hold an owner that is gone."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kubeapi import label_selector
from kubeapi.informer import Store
from kubeapi.restclient import ApiClient
from kubeapi.status import ApiError

from ..fresh_read import fresh_read
from .pod_util import controller_ref


def resolve(store: Store, namespace: str, ref: dict | None, kind: str) -> dict | None:
    """The owner in the cache that a controller reference names, when it is of `kind` and has
    the reference's uid (not a namesake made since), as kube's resolveControllerRef."""
    if not ref or ref.get("kind") != kind:
        return None
    owner = store.get(f"{namespace}/{ref.get('name', '')}")
    return owner if owner is not None and owner["metadata"].get("uid") == ref.get("uid") else None


def owner_reference(owner: dict) -> dict:
    """metav1.NewControllerRef."""
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"],
            "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True}


@dataclass
class Claimer:
    client: ApiClient
    owner: dict
    dependent_path: Callable[[dict], str]   # the URL of a dependent
    owner_path: str                         # the owner's URL, to read it past the cache
    _can_adopt: bool | None = None

    def claim(self, objects: list[dict]) -> list[dict]:
        """The objects the owner controls after adoption and release."""
        uid = self.owner["metadata"]["uid"]
        deleting = bool(self.owner["metadata"].get("deletionTimestamp"))
        selector = self.owner["spec"].get("selector")
        claimed = []
        for obj in objects:
            ref = controller_ref(obj)
            matches = label_selector.matches(selector, obj["metadata"].get("labels"))
            if ref is not None:
                if ref.get("uid") != uid:
                    continue
                if matches or deleting:
                    claimed.append(obj)
                elif not obj["metadata"].get("deletionTimestamp"):
                    self._release(obj)
                continue
            if deleting or not matches or obj["metadata"].get("deletionTimestamp"):
                continue
            if self._adopt(obj):
                claimed.append(obj)
        return claimed

    def _owner_alive(self) -> bool:
        if self._can_adopt is None:
            fresh = fresh_read(self.client, self.owner_path)
            self._can_adopt = fresh is not None and \
                fresh["metadata"].get("uid") == self.owner["metadata"]["uid"] and \
                not fresh["metadata"].get("deletionTimestamp")
        return self._can_adopt

    def _adopt(self, obj: dict) -> bool:
        if not self._owner_alive():
            return False
        patch = {"metadata": {"ownerReferences": [owner_reference(self.owner)],
                              "uid": obj["metadata"]["uid"]}}
        try:
            self.client.patch(self.dependent_path(obj), patch, "strategic")
        except ApiError as e:
            if e.code in (404, 409, 422):  # gone, replaced, or owned meanwhile
                return False
            raise
        return True

    def _release(self, obj: dict) -> None:
        patch = {"metadata": {"ownerReferences": [{"$patch": "delete",
                                                   "uid": self.owner["metadata"]["uid"]}],
                              "uid": obj["metadata"]["uid"]}}
        try:
            self.client.patch(self.dependent_path(obj), patch, "strategic")
        except ApiError as e:
            if e.code not in (404, 409, 422):
                raise
