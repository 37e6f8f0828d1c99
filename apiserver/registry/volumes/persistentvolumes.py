"""v1 PersistentVolumes (cluster-scoped) and PersistentVolumeClaims, with kube's defaults and the
checks of its ValidatePersistentVolume/Claim that matter here: access modes, the storage
request or capacity, exactly one volume source of those we serve (hostPath, local), and what
may change in a claim's spec after its creation."""
from __future__ import annotations

from kubeapi.quantity import parse_quantity
from kubeapi.status import forbidden_field, invalid_value, not_supported, required

from ..strategy import Strategy
from . import claim_diff

ACCESS_MODES = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]
RECLAIM_POLICIES = ["Delete", "Recycle", "Retain"]
VOLUME_MODES = ["Block", "Filesystem"]
SOURCES = ("hostPath", "local")
IMMUTABLE = ("spec is immutable after creation except resources.requests and "
             "volumeAttributesClassName for bound claims")
BETA_CLASS = "volume.beta.kubernetes.io/storage-class"


def _access_modes(spec: dict, path: str) -> list[dict]:
    modes = spec.get("accessModes")
    if not modes:
        return [required(f"{path}.accessModes")]
    errors = [not_supported(f"{path}.accessModes", m, ACCESS_MODES)
              for m in modes if m not in ACCESS_MODES]
    if "ReadWriteOncePod" in modes and len(modes) > 1:
        errors.append(forbidden_field(f"{path}.accessModes", "may not use ReadWriteOncePod "
                                      "with other access modes"))
    return errors


def _storage(value: object, path: str) -> list[dict]:
    if value is None:
        return [required(path)]
    try:
        quantity = parse_quantity(str(value))
    except ValueError:
        return [invalid_value(path, value, "quantities must match the regular expression "
                              "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
    if quantity <= 0:
        return [invalid_value(path, value, "must be greater than zero")]
    return []


class _VolumeStrategy(Strategy):
    """What a PersistentVolume and a claim share: phase Pending until bound, a Filesystem
    volume by default, and the checks of access modes, size and volume mode around those of
    their own (`size`, `storage_path` and `source_errors`)."""

    has_status = True
    storage_path = ""

    def default(self, obj: dict) -> None:
        spec = obj.get("spec")
        if isinstance(spec, dict):
            spec.setdefault("volumeMode", "Filesystem")
        status = obj.setdefault("status", {})
        if isinstance(status, dict):
            status.setdefault("phase", "Pending")

    def size(self, spec: dict) -> object:
        raise NotImplementedError

    def source_errors(self, spec: dict) -> list[dict]:
        return []

    def validate(self, obj: dict) -> list[dict]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [required("spec")]
        errors = _access_modes(spec, "spec")
        errors += _storage(self.size(spec), self.storage_path)
        errors += self.source_errors(spec)
        if spec.get("volumeMode") not in VOLUME_MODES:
            errors.append(not_supported("spec.volumeMode", spec.get("volumeMode"),
                                        VOLUME_MODES))
        return errors


class PersistentVolumeStrategy(_VolumeStrategy):
    kind = "PersistentVolume"
    namespaced = False
    storage_path = "spec.capacity"

    def default(self, obj: dict) -> None:
        spec = obj.get("spec")
        if isinstance(spec, dict):
            spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
        super().default(obj)

    def size(self, spec: dict) -> object:
        return (spec.get("capacity") or {}).get("storage")

    def source_errors(self, spec: dict) -> list[dict]:
        errors = []
        sources = [s for s in SOURCES if spec.get(s) is not None]
        if not sources:
            errors.append(required("spec", "must specify a volume type"))
        elif len(sources) > 1:
            errors.append(forbidden_field(f"spec.{sources[1]}",
                                          "may not specify more than 1 volume type"))
        else:
            source = spec[sources[0]]
            if not isinstance(source, dict) or not source.get("path"):
                errors.append(required(f"spec.{sources[0]}.path"))
        policy = spec.get("persistentVolumeReclaimPolicy")
        if policy not in RECLAIM_POLICIES:
            errors.append(not_supported("spec.persistentVolumeReclaimPolicy", policy,
                                        RECLAIM_POLICIES))
        return errors


class PersistentVolumeClaimStrategy(_VolumeStrategy):
    kind = "PersistentVolumeClaim"
    storage_path = "spec.resources[storage]"

    def size(self, spec: dict) -> object:
        return ((spec.get("resources") or {}).get("requests") or {}).get("storage")

    def validate_update(self, new: dict, old: dict) -> list[dict]:
        """kube's ValidatePersistentVolumeClaimUpdate: the spec is fixed after creation but
        for a volumeName set once, a storageClassName set where there was none, and on a bound
        claim its storage request (never below the capacity it got) and its
        volumeAttributesClassName; the error shows the difference as kube's does."""
        errors = self.validate(new)
        old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
        if not isinstance(new_spec, dict):
            return errors
        before, after = dict(old_spec), dict(new_spec)
        if not old_spec.get("volumeName"):
            before["volumeName"] = new_spec.get("volumeName")
        if old_spec.get("storageClassName") is None and new_spec.get("storageClassName") and \
                BETA_CLASS not in ((old.get("metadata") or {}).get("annotations") or {}):
            after["storageClassName"] = None
        if ((new.get("status") or {}).get("phase")) == "Bound":
            requests = (after.get("resources") or {}).get("requests")
            if requests is not None:
                requests = {**requests, "storage": self.size(old_spec)}
                after["resources"] = {**after["resources"], "requests": requests}
            after["volumeAttributesClassName"] = before.get("volumeAttributesClassName")
        if claim_diff.comparable(before) != claim_diff.comparable(after):
            errors.append(forbidden_field("spec", IMMUTABLE + "\n" +
                                          claim_diff.diff(before, after)))
        errors += _shrink_errors(self.size(new_spec), self.size(old_spec),
                                 ((old.get("status") or {}).get("capacity") or {}).get("storage"))
        if new_spec.get("volumeMode") != old_spec.get("volumeMode"):
            # kube names the field without its spec (ValidateImmutableField of "volumeMode").
            errors.append(invalid_value("volumeMode", new_spec.get("volumeMode"),
                                        "field is immutable"))
        return errors


def _shrink_errors(new: object, old: object, capacity: object) -> list[dict]:
    """A request may go down after a failed expansion, but not to the capacity or below."""
    try:
        new_size, old_size = parse_quantity(str(new)), parse_quantity(str(old))
        got = parse_quantity(str(capacity)) if capacity is not None else 0
    except ValueError:
        return []  # validate names a bad quantity
    if new_size < old_size and new_size <= got:
        return [forbidden_field("spec.resources.requests.storage",
                                "field can not be less than status.capacity")]
    return []
