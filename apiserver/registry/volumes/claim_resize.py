"""kube's PersistentVolumeClaimResize admission: a bound claim's storage request may grow only
when its StorageClass (the same before and after) exists and sets allowVolumeExpansion. As in
kube, it runs once the update has passed validation (which refuses a new request of an unbound
claim), on the claim itself, not its status."""
from __future__ import annotations

from kubeapi.quantity import parse_quantity
from kubeapi.status import ApiError

from .persistentvolumes import BETA_CLASS, PersistentVolumeClaimStrategy

NOT_EXPANDABLE = ("only dynamically provisioned pvc can be resized and the storageclass that "
                  "provisions the pvc must support resize")


def claim_class(claim: dict) -> str:
    """The claim's StorageClass name, the beta annotation first (kube's
    GetPersistentVolumeClaimClass); "" for none."""
    annotations = (claim.get("metadata") or {}).get("annotations") or {}
    if BETA_CLASS in annotations:
        return annotations[BETA_CLASS]
    return (claim.get("spec") or {}).get("storageClassName") or ""


class ResizingClaimStrategy(PersistentVolumeClaimStrategy):
    """The claim strategy of a server that runs the resize admission; `classes` is the
    StorageClass store."""

    def __init__(self, classes) -> None:
        self._classes = classes

    def validate_update(self, new: dict, old: dict) -> list[dict]:
        errors = super().validate_update(new, old)
        if not errors and self._grows(new, old) and not self._expandable(new, old):
            name = (old.get("metadata") or {}).get("name", "")
            raise ApiError(403, "Forbidden", f'persistentvolumeclaims "{name}" is forbidden: '
                           f"{NOT_EXPANDABLE}", kind="persistentvolumeclaims", name=name)
        return errors

    def _grows(self, new: dict, old: dict) -> bool:
        try:
            return parse_quantity(str(self.size(new["spec"]))) > \
                parse_quantity(str(self.size(old.get("spec") or {})))
        except ValueError:
            return False  # an old claim without a request: nothing to grow from

    def _expandable(self, new: dict, old: dict) -> bool:
        name = claim_class(new)
        if not name or name != claim_class(old):
            return False
        try:
            # a cached state will do, as kube's admission reads its informer's
            storage_class = self._classes.get("", name, recent=True)
        except ApiError:
            return False
        return storage_class.get("allowVolumeExpansion") is True
