"""The scale subresource: an autoscaling/v1 Scale view of spec.replicas of a Deployment,
ReplicaSet or StatefulSet (kube's ScaleREST)."""
from __future__ import annotations

from kubeapi import status
from kubeapi.label_selector import to_string


def to_scale(obj: dict) -> dict:
    meta = obj.get("metadata") or {}
    spec, st = obj.get("spec") or {}, obj.get("status") or {}
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                              "creationTimestamp") if k in meta},
            "spec": {"replicas": spec.get("replicas", 0)},
            "status": {"replicas": st.get("replicas", 0),
                       "selector": to_string(spec.get("selector"))}}


def from_scale(obj: dict, scale: object) -> dict:
    """obj with the replicas of scale; 422 as kube's ValidateScale, 409 on a stale version."""
    name = (obj.get("metadata") or {}).get("name", "")
    if not isinstance(scale, dict):
        raise status.bad_request("the request body must be a JSON or YAML object")
    if scale.get("kind") not in (None, "Scale"):
        raise status.bad_request(f"the kind in the data ({scale['kind']}) does not match the "
                                 "expected kind (Scale)")
    replicas = (scale.get("spec") or {}).get("replicas", 0)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        error = status.invalid("Scale", name, [status.invalid_value(
            "spec.replicas", replicas, "must be greater than or equal to 0")], "autoscaling")
        error.message = error.message.replace("Scale", "Scale.autoscaling", 1)
        raise error
    rv = (scale.get("metadata") or {}).get("resourceVersion")
    if rv:
        obj["metadata"]["resourceVersion"] = rv  # the store's precondition
    obj.setdefault("spec", {})["replicas"] = replicas
    return obj
