"""v1 PersistentVolumes (cluster-scoped) and PersistentVolumeClaims, with kube's defaults and the
checks of its ValidatePersistentVolume/Claim that matter here: access modes, the storage
request or capacity, exactly one volume source of those we serve (hostPath, local), and a
claim's spec fixed once bound except for its volumeName being set."""
from __future__ import annotations

from kubeapi.quantity import parse_quantity
from kubeapi.status import forbidden_field, invalid_value, not_supported, required

from ..strategy import Strategy

ACCESS_MODES = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]
RECLAIM_POLICIES = ["Delete", "Recycle", "Retain"]
VOLUME_MODES = ["Block", "Filesystem"]
SOURCES = ("hostPath", "local")


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
        errors = self.validate(new)
        old_spec = dict(old.get("spec") or {})
        new_spec = dict(new.get("spec") or {})
        binding = not old_spec.get("volumeName")
        for spec in (old_spec, new_spec):
            spec.pop("resources", None)
            if binding:
                spec.pop("volumeName", None)
        if old_spec != new_spec:
            errors.append(forbidden_field("spec", "spec is immutable after creation except "
                                          "resources.requests and "
                                          "volumeAttributesClassName for bound claims"))
        return errors
