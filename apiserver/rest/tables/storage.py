"""Table columns of PersistentVolumes and PersistentVolumeClaims, as kube's printers.go prints
them for `kubectl get pv,pvc` (access modes abbreviated RWO, ROX, RWX, RWOP; a claim shows its
volume's capacity and modes once bound; VolumeMode with -o wide)."""
from __future__ import annotations

from typing import Callable

from .columns import AGE, NAME, age, column

_MODES = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
          ("ReadWriteOncePod", "RWOP"))
_UNSET = "<unset>"


def access_modes(modes: list[str] | None) -> str:
    """helper.GetAccessModesAsString: kube's fixed order, each once."""
    present = set(modes or [])
    return ",".join(short for mode, short in _MODES if mode in present)


def _attributes_class(spec: dict) -> str:
    return spec.get("volumeAttributesClassName") or _UNSET


def _pv_row(pv: dict) -> list:
    meta, spec, status = pv.get("metadata") or {}, pv.get("spec") or {}, pv.get("status") or {}
    ref = spec.get("claimRef") or {}
    claim = f"{ref.get('namespace', '')}/{ref.get('name', '')}" if ref else ""
    phase = "Terminating" if meta.get("deletionTimestamp") else status.get("phase", "")
    return [meta.get("name"), str((spec.get("capacity") or {}).get("storage", "0")),
            access_modes(spec.get("accessModes")), spec.get("persistentVolumeReclaimPolicy", ""),
            phase, claim, spec.get("storageClassName", ""), _attributes_class(spec),
            status.get("reason", ""), age(meta.get("creationTimestamp")),
            spec.get("volumeMode") or _UNSET]


def _pvc_row(pvc: dict) -> list:
    meta, spec = pvc.get("metadata") or {}, pvc.get("spec") or {}
    status = pvc.get("status") or {}
    phase = "Terminating" if meta.get("deletionTimestamp") else status.get("phase", "")
    capacity = modes = ""
    if spec.get("volumeName"):
        modes = access_modes(status.get("accessModes"))
        capacity = str((status.get("capacity") or {}).get("storage", ""))
    return [meta.get("name"), phase, spec.get("volumeName", ""), capacity, modes,
            spec.get("storageClassName", ""), _attributes_class(spec),
            age(meta.get("creationTimestamp")), spec.get("volumeMode") or _UNSET]


STORAGE_TABLES: dict[str, tuple[list[dict], Callable[[dict], list]]] = {
    "persistentvolumes": ([NAME, column("Capacity"), column("Access Modes"),
                           column("Reclaim Policy"), column("Status"), column("Claim"),
                           column("StorageClass"), column("VolumeAttributesClass"),
                           column("Reason"),
                           AGE, column("VolumeMode", priority=1)], _pv_row),
    "persistentvolumeclaims": ([NAME, column("Status"), column("Volume"), column("Capacity"),
                                column("Access Modes"), column("StorageClass"),
                                column("VolumeAttributesClass"), AGE,
                                column("VolumeMode", priority=1)], _pvc_row),
}
