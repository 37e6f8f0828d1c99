"""The simplest storage for PersistentVolumeClaims on a one-machine cluster: a hostPath-backed
local provisioner (as rancher's local-path-provisioner, run inside the controller manager) with
kube's binding. A pending claim is bound to an Available PersistentVolume that fits it (same
storageClassName, its access modes, at least its request; the smallest first), as kube's PV
controller binds; failing that a directory `<root>/pvc-<claim uid>_<namespace>_<claim>` is made
under --local-pv-root and a PersistentVolume `pvc-<claim uid>` (hostPath, reclaim policy
Delete, claimRef) is created for it. The claim gets spec.volumeName, kube's bind annotations and
status Bound. When a bound claim is gone its volume is Released; one of ours is then deleted
with its directory."""
from __future__ import annotations

import logging
import os
import shutil

from kubeapi.informer import object_key, object_of, resource_path
from kubeapi.quantity import parse_quantity
from kubeapi.status import ApiError
from kubeapi.workqueue import RateLimitingQueue

from ..context import ControllerContext
from ..events import EventRecorder
from ..fresh_read import fresh_read
from ..workers import start_workers

log = logging.getLogger("local-provisioner")

PROVISIONER = "pycontainer.io/local-path"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
DEFAULT_ROOT = "/var/lib/pycontainer/local-volumes"
PVS = "/api/v1/persistentvolumes"


def pvcs_path(ns: str, name: str = "") -> str:
    base = f"/api/v1/namespaces/{ns}/persistentvolumeclaims"
    return f"{base}/{name}" if name else base


def _request(pvc: dict) -> object:
    return (((pvc.get("spec") or {}).get("resources") or {}).get("requests") or {}).get(
        "storage", "0")


def fits(pv: dict, pvc: dict) -> bool:
    """Whether an Available volume may be bound to the claim."""
    spec, claim = pv.get("spec") or {}, pvc.get("spec") or {}
    if (pv.get("status") or {}).get("phase", "Available") not in ("Available", "Pending") or \
            spec.get("claimRef") or pv["metadata"].get("deletionTimestamp"):
        return False
    if (spec.get("storageClassName") or "") != (claim.get("storageClassName") or ""):
        return False
    if not set(claim.get("accessModes") or []) <= set(spec.get("accessModes") or []):
        return False
    if claim.get("volumeMode", "Filesystem") != spec.get("volumeMode", "Filesystem"):
        return False
    if claim.get("volumeName") and claim["volumeName"] != pv["metadata"]["name"]:
        return False
    have = parse_quantity(str((spec.get("capacity") or {}).get("storage", "0")))
    return have >= parse_quantity(str(_request(pvc)))


def claim_ref(pvc: dict) -> dict:
    meta = pvc["metadata"]
    return {"kind": "PersistentVolumeClaim", "namespace": meta["namespace"],
            "name": meta["name"], "uid": meta["uid"], "apiVersion": "v1",
            "resourceVersion": meta.get("resourceVersion", "")}


class LocalProvisioner:
    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.root = os.path.abspath(ctx.options.extra.get("local_pv_root") or DEFAULT_ROOT)
        self.claims = ctx.informers.informer(resource_path("", "v1", "persistentvolumeclaims"))
        self.volumes = ctx.informers.informer(resource_path("", "v1", "persistentvolumes"))
        self.queue = RateLimitingQueue(name="local-provisioner")
        self.recorder = EventRecorder(ctx.client, "persistentvolume-controller")
        self.claims.add_event_handler(on_add=self._claim_event,
                                      on_update=lambda old, new: self._claim_event(new),
                                      on_delete=lambda item: self._claim_gone(object_of(item)))
        self.volumes.add_event_handler(on_add=self._volume_event,
                                       on_update=lambda old, new: self._volume_event(new))

    def start(self) -> None:
        start_workers(self.ctx, "local-provisioner", self.queue, self.sync,
                      [self.claims, self.volumes], 1, log)

    def _claim_event(self, pvc: dict) -> None:
        self.queue.add("claim/" + object_key(pvc))

    def _claim_gone(self, pvc: dict) -> None:
        for pv in self.volumes.store.list():
            if ((pv.get("spec") or {}).get("claimRef") or {}).get("uid") == \
                    pvc["metadata"].get("uid"):
                self.queue.add("volume/" + pv["metadata"]["name"])

    def _volume_event(self, pv: dict) -> None:
        self.queue.add("volume/" + pv["metadata"]["name"])
        if (pv.get("status") or {}).get("phase") == "Available":
            for pvc in self.claims.store.list():
                if (pvc.get("status") or {}).get("phase") == "Pending":
                    self._claim_event(pvc)

    def sync(self, key: str) -> None:
        kind, _, rest = key.partition("/")
        if kind == "claim":
            pvc = self.claims.store.get(rest)
            if pvc is not None:
                self._sync_claim(pvc)
        else:
            pv = self.volumes.store.get(rest)
            if pv is not None:
                self._sync_volume(pv)

    # claims

    def _sync_claim(self, pvc: dict) -> None:
        if pvc["metadata"].get("deletionTimestamp") or \
                (pvc.get("status") or {}).get("phase") == "Bound":
            return
        uid = pvc["metadata"]["uid"]
        bound = [pv for pv in self.volumes.store.list()
                 if ((pv.get("spec") or {}).get("claimRef") or {}).get("uid") == uid]
        if bound:
            pv = bound[0]
        else:
            candidates = sorted((pv for pv in self.volumes.store.list() if fits(pv, pvc)),
                                key=lambda pv: parse_quantity(
                                    str(pv["spec"]["capacity"]["storage"])))
            pv = self._reserve(candidates[0], pvc) if candidates else self._provision(pvc)
            if pv is None:
                return
        self._bind_claim(pvc, pv)

    def _reserve(self, pv: dict, pvc: dict) -> dict | None:
        pv = {**pv, "spec": {**pv["spec"], "claimRef": claim_ref(pvc)}}
        try:
            return self.client.request("PUT", f"{PVS}/{pv['metadata']['name']}", pv)
        except ApiError as e:
            if e.code in (404, 409):
                self._claim_event(pvc)
                return None
            raise

    def _provision(self, pvc: dict) -> dict | None:
        meta = pvc["metadata"]
        name = f"pvc-{meta['uid']}"
        path = os.path.join(self.root, f"{name}_{meta['namespace']}_{meta['name']}")
        os.makedirs(path, mode=0o777, exist_ok=True)
        os.chmod(path, 0o777)  # any pod user may write, as local-path-provisioner's dirs
        spec = pvc.get("spec") or {}
        pv = {"apiVersion": "v1", "kind": "PersistentVolume",
              "metadata": {"name": name, "annotations": {PROVISIONED_BY: PROVISIONER}},
              "spec": {"capacity": {"storage": _request(pvc)},
                       "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                       "hostPath": {"path": path, "type": "DirectoryOrCreate"},
                       "persistentVolumeReclaimPolicy": "Delete",
                       "volumeMode": spec.get("volumeMode", "Filesystem"),
                       "claimRef": claim_ref(pvc)}}
        if spec.get("storageClassName"):
            pv["spec"]["storageClassName"] = spec["storageClassName"]
        try:
            created = self.client.create(PVS, pv)
        except ApiError as e:
            if e.code != 409:
                shutil.rmtree(path, ignore_errors=True)
                raise
            created = self.client.get(f"{PVS}/{name}")
        self.recorder.event({"kind": "PersistentVolumeClaim", **pvc}, "Normal",
                            "ProvisioningSucceeded",
                            f"Successfully provisioned volume {name} at {path}")
        return created

    def _bind_claim(self, pvc: dict, pv: dict) -> None:
        meta = pvc["metadata"]
        name = pv["metadata"]["name"]
        if (pv.get("status") or {}).get("phase") != "Bound":
            try:
                self.client.request("PUT", f"{PVS}/{name}/status",
                                    {**pv, "status": {"phase": "Bound"}})
            except ApiError as e:
                if e.code not in (404, 409):
                    raise
                self._claim_event(pvc)
                return
        annotations = {**(meta.get("annotations") or {}),
                       "pv.kubernetes.io/bind-completed": "yes",
                       "pv.kubernetes.io/bound-by-controller": "yes"}
        if (pv["metadata"].get("annotations") or {}).get(PROVISIONED_BY):
            annotations["volume.kubernetes.io/storage-provisioner"] = PROVISIONER
        path = pvcs_path(meta["namespace"], meta["name"])
        if (pvc.get("spec") or {}).get("volumeName") != name:
            pvc = self.client.patch(path, {"metadata": {"annotations": annotations,
                                                        "uid": meta["uid"]},
                                           "spec": {"volumeName": name}})
        status = {"phase": "Bound", "accessModes": pv["spec"].get("accessModes") or [],
                  "capacity": pv["spec"].get("capacity") or {}}
        self.client.request("PUT", f"{path}/status", {**pvc, "status": status})

    # volumes

    def _sync_volume(self, pv: dict) -> None:
        ref = (pv.get("spec") or {}).get("claimRef")
        phase = (pv.get("status") or {}).get("phase")
        if not ref:
            if phase in (None, "Pending"):
                self._set_phase(pv, "Available")
            return
        pvc = self.claims.store.get(f"{ref.get('namespace')}/{ref.get('name')}")
        if pvc is not None and pvc["metadata"].get("uid") == ref.get("uid"):
            if phase != "Bound" and (pvc.get("spec") or {}).get("volumeName") == \
                    pv["metadata"]["name"]:
                self._set_phase(pv, "Bound")
            return
        if pvc is None and ref.get("uid") and not self._claim_gone_for_sure(ref):
            return
        if phase != "Released":
            pv = self._set_phase(pv, "Released") or pv
        ours = (pv["metadata"].get("annotations") or {}).get(PROVISIONED_BY) == PROVISIONER
        if ours and pv["spec"].get("persistentVolumeReclaimPolicy") == "Delete":
            self._delete_volume(pv)

    def _claim_gone_for_sure(self, ref: dict) -> bool:
        """The cache may lag: a claim is gone when the API says so (or has another uid)."""
        pvc = fresh_read(self.client, pvcs_path(ref.get("namespace", ""), ref.get("name", "")))
        return pvc is None or pvc["metadata"].get("uid") != ref.get("uid")

    def _set_phase(self, pv: dict, phase: str) -> dict | None:
        try:
            return self.client.request("PUT", f"{PVS}/{pv['metadata']['name']}/status",
                                       {**pv, "status": {**(pv.get("status") or {}),
                                                         "phase": phase}})
        except ApiError as e:
            if e.code in (404, 409):
                return None
            raise

    def _delete_volume(self, pv: dict) -> None:
        path = os.path.abspath((pv["spec"].get("hostPath") or {}).get("path", ""))
        # Only a directory of ours directly under the root, whatever the object says.
        if os.path.dirname(path) == self.root and \
                os.path.basename(path).startswith(pv["metadata"]["name"] + "_"):
            shutil.rmtree(path, ignore_errors=True)
        try:
            self.client.delete(f"{PVS}/{pv['metadata']['name']}",
                               {"preconditions": {"uid": pv["metadata"]["uid"]}})
        except ApiError as e:
            if e.code not in (404, 409):
                raise


def start(ctx: ControllerContext) -> None:
    LocalProvisioner(ctx).start()
