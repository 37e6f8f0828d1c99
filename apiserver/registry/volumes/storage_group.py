"""storage.k8s.io/v1 CSINodes, CSIDrivers and StorageClasses (all cluster-scoped), with the
defaults of kube's storage/v1 SetDefaults_* and the checks of its ValidateCSINode,
ValidateCSIDriver and ValidateStorageClass that a kubelet or kubectl meets: a kubelet creates
its node's CSINode (no drivers here) at start and stays NotReady without it."""
from __future__ import annotations

import json

from kubeapi import validation
from kubeapi.status import (duplicate, field_error, forbidden_field, invalid_value,
                            not_supported, required)

from ..strategy import Strategy

CSI_NAME_MAX = 63
NODE_ID_MAX = 192
LIFECYCLE_MODES = ["Ephemeral", "Persistent"]
FS_GROUP_POLICIES = ["File", "None", "ReadWriteOnceWithFSType"]
RECLAIM_POLICIES = ["Delete", "Retain"]
BINDING_MODES = ["Immediate", "WaitForFirstConsumer"]


def _too_long(field: str, limit: int) -> dict:
    return field_error("FieldValueTooLong", field,
                       f"Too long: may not be more than {limit} bytes")


def csi_driver_name(name: object, field: str) -> list[dict]:
    """ValidateCSIDriverName: a DNS-1123 subdomain of at most 63 characters."""
    if not name:
        return [required(field)]
    if isinstance(name, str) and len(name) > CSI_NAME_MAX:
        return [_too_long(field, CSI_NAME_MAX)]
    return validation.dns1123_subdomain(name, field)


def _immutable(field: str, value: object) -> dict:
    if isinstance(value, str):
        return invalid_value(field, value, "field is immutable")
    # Go prints a bool as false, not Python's False
    return field_error("FieldValueInvalid", field,
                       f"Invalid value: {json.dumps(value)}: field is immutable")


class CSINodeStrategy(Strategy):
    kind = "CSINode"
    namespaced = False

    def validate(self, obj: dict) -> list[dict]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [required("spec")]
        drivers = spec.get("drivers") or []
        if not isinstance(drivers, list):
            return [invalid_value("spec.drivers", drivers, "must be a list")]
        errors, seen = [], set()
        for i, driver in enumerate(drivers):
            path = f"spec.drivers[{i}]"
            if not isinstance(driver, dict):
                errors.append(invalid_value(path, driver, "must be an object"))
                continue
            name = driver.get("name")
            name_errors = csi_driver_name(name, f"{path}.name")
            errors += name_errors
            if not name_errors and name in seen:
                errors.append(duplicate(f"{path}.name", name))
            seen.add(name)
            node_id = driver.get("nodeID")
            if not node_id:
                errors.append(required(f"{path}.nodeID"))
            elif len(str(node_id)) > NODE_ID_MAX:
                errors.append(invalid_value(f"{path}.nodeID", node_id,
                                            f"must be {NODE_ID_MAX} characters or less"))
            count = (driver.get("allocatable") or {}).get("count")
            if count is not None and (not isinstance(count, int) or count < 0):
                errors.append(invalid_value(f"{path}.allocatable.count", count,
                                            "must be greater than or equal to 0"))
        return errors


class CSIDriverStrategy(Strategy):
    kind = "CSIDriver"
    namespaced = False

    def name_errors(self, name: str, field: str) -> list[dict]:
        return csi_driver_name(name, field)

    def default(self, obj: dict) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        for key, value in (("attachRequired", True), ("podInfoOnMount", False),
                           ("storageCapacity", False), ("requiresRepublish", False),
                           ("seLinuxMount", False),
                           ("fsGroupPolicy", "ReadWriteOnceWithFSType")):
            spec.setdefault(key, value)
        if not spec.get("volumeLifecycleModes"):
            spec["volumeLifecycleModes"] = ["Persistent"]

    def validate(self, obj: dict) -> list[dict]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [required("spec")]
        errors = []
        for key in ("attachRequired", "podInfoOnMount", "storageCapacity", "requiresRepublish"):
            if not isinstance(spec.get(key), bool):
                errors.append(required(f"spec.{key}"))
        policy = spec.get("fsGroupPolicy")
        if policy not in FS_GROUP_POLICIES:
            errors.append(not_supported("spec.fsGroupPolicy", policy, FS_GROUP_POLICIES))
        errors += [not_supported("spec.volumeLifecycleModes", mode, LIFECYCLE_MODES)
                   for mode in spec.get("volumeLifecycleModes") or []
                   if mode not in LIFECYCLE_MODES]
        for i, request in enumerate(spec.get("tokenRequests") or []):
            audience = (request or {}).get("audience")
            if audience is None:
                errors.append(required(f"spec.tokenRequests[{i}].audience"))
        return errors

    def validate_update(self, new: dict, old: dict) -> list[dict]:
        errors = self.validate(new)
        new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
        for key in ("attachRequired", "volumeLifecycleModes"):
            if new_spec.get(key) != old_spec.get(key):
                errors.append(_immutable(f"spec.{key}", new_spec.get(key)))
        return errors


class StorageClassStrategy(Strategy):
    kind = "StorageClass"
    namespaced = False

    def default(self, obj: dict) -> None:
        obj.setdefault("reclaimPolicy", "Delete")
        obj.setdefault("volumeBindingMode", "Immediate")

    def validate(self, obj: dict) -> list[dict]:
        provisioner = obj.get("provisioner")
        errors = validation.qualified_name(str(provisioner).lower(), "provisioner") \
            if provisioner else [required("provisioner")]
        if obj.get("reclaimPolicy") not in RECLAIM_POLICIES:
            errors.append(not_supported("reclaimPolicy", obj.get("reclaimPolicy"),
                                        RECLAIM_POLICIES))
        if obj.get("volumeBindingMode") not in BINDING_MODES:
            errors.append(not_supported("volumeBindingMode", obj.get("volumeBindingMode"),
                                        BINDING_MODES))
        errors += validation.string_map(obj.get("parameters") or {}, "parameters")
        return errors

    def validate_update(self, new: dict, old: dict) -> list[dict]:
        errors = self.validate(new)
        for key in ("parameters", "provisioner", "reclaimPolicy", "volumeBindingMode"):
            if new.get(key) != old.get(key):
                errors.append(forbidden_field(key, f"updates to {key} are forbidden."))
        return errors
