"""A pod's persistentVolumeClaim volume: the claim, the PersistentVolume it is bound to, and
that volume's directory on this node (hostPath or local, the sources our provisioner and users
give), as the kubelet's volume manager resolves PVC -> PV before mounting. A claim not yet
bound is an error the pod worker retries, with the kubelet's wording."""
from __future__ import annotations

from kubeapi.restclient import ApiClient
from kubeapi.status import ApiError

from kubelet.config_objects import ObjectMissing, ObjectUnavailable


def _get(client: ApiClient | None, path: str, what: str) -> dict:
    if client is None:
        raise ObjectUnavailable(f"couldn't get {what}, no kubeClient defined")
    try:
        return client.get(path)
    except ApiError as e:
        if e.code == 404:
            raise ObjectMissing(f"{what} not found") from None
        raise ObjectUnavailable(f"couldn't get {what}: {e}") from None


def volume_path(client: ApiClient | None, namespace: str, claim: str) -> tuple[str, str]:
    """(host path, hostPath type) of the volume bound to the claim."""
    pvc = _get(client, f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}",
               f'persistentvolumeclaim "{claim}"')
    volume_name = (pvc.get("spec") or {}).get("volumeName")
    if not volume_name or (pvc.get("status") or {}).get("phase") != "Bound":
        raise ValueError(f'PVC {namespace}/{claim} is not bound')
    pv = _get(client, f"/api/v1/persistentvolumes/{volume_name}",
              f'persistentvolume "{volume_name}"')
    spec = pv.get("spec") or {}
    ref = spec.get("claimRef") or {}
    if ref.get("uid") and ref.get("uid") != pvc["metadata"].get("uid"):
        raise ValueError(f"persistentvolume {volume_name} is bound to another claim")
    if spec.get("hostPath"):
        return spec["hostPath"].get("path", ""), spec["hostPath"].get("type") or ""
    if spec.get("local"):
        return spec["local"].get("path", ""), "Directory"
    raise ValueError(f"persistentvolume {volume_name}: only hostPath and local volumes are "
                     "supported by pykubelet")
