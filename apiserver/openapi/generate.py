"""Regenerates schemas.json, the type schemas behind /openapi/v2 and /openapi/v3.

A development tool, not used at run time: it reads the official `kubernetes` Python client's
models (in the test extra) and writes their JSON schemas under the Kubernetes definition names,
with the patch strategy extensions that kubectl reads. Run: python -m apiserver.openapi.generate
"""
from __future__ import annotations

import json
import os
import re

from ..patch.strategic_merge import MERGE_KEYS

ROOTS = {  # client model -> (definition name, group, version, kind)
    "V1Pod": ("io.k8s.api.core.v1.Pod", "", "v1", "Pod"),
    "V1Node": ("io.k8s.api.core.v1.Node", "", "v1", "Node"),
    "V1Namespace": ("io.k8s.api.core.v1.Namespace", "", "v1", "Namespace"),
    "CoreV1Event": ("io.k8s.api.core.v1.Event", "", "v1", "Event"),
    "V1ConfigMap": ("io.k8s.api.core.v1.ConfigMap", "", "v1", "ConfigMap"),
    "V1Secret": ("io.k8s.api.core.v1.Secret", "", "v1", "Secret"),
    "V1Binding": ("io.k8s.api.core.v1.Binding", "", "v1", "Binding"),
    "V1Lease": ("io.k8s.api.coordination.v1.Lease", "coordination.k8s.io", "v1", "Lease"),
    "V1ServiceAccount": ("io.k8s.api.core.v1.ServiceAccount", "", "v1", "ServiceAccount"),
    "V1PersistentVolume": ("io.k8s.api.core.v1.PersistentVolume", "", "v1",
                           "PersistentVolume"),
    "V1PersistentVolumeClaim": ("io.k8s.api.core.v1.PersistentVolumeClaim", "", "v1",
                                "PersistentVolumeClaim"),
    "V1Service": ("io.k8s.api.core.v1.Service", "", "v1", "Service"),
    "V1Endpoints": ("io.k8s.api.core.v1.Endpoints", "", "v1", "Endpoints"),
    "V1EndpointSlice": ("io.k8s.api.discovery.v1.EndpointSlice", "discovery.k8s.io", "v1",
                        "EndpointSlice"),
    **{f"V1{kind}": (f"io.k8s.api.authorization.v1.{kind}", "authorization.k8s.io", "v1", kind)
       for kind in ("SelfSubjectAccessReview", "SelfSubjectRulesReview", "SubjectAccessReview",
                    "LocalSubjectAccessReview")},
    **{f"V1{kind}": (f"io.k8s.api.authentication.v1.{kind}", "authentication.k8s.io", "v1",
                     kind) for kind in ("SelfSubjectReview", "TokenReview")},
    "AuthenticationV1TokenRequest": ("io.k8s.api.authentication.v1.TokenRequest",
                                     "authentication.k8s.io", "v1", "TokenRequest"),
    **{f"V1{kind}": (f"io.k8s.api.apps.v1.{kind}", "apps", "v1", kind)
       for kind in ("Deployment", "ReplicaSet", "DaemonSet", "StatefulSet",
                    "ControllerRevision")},
    **{f"V1{kind}": (f"io.k8s.api.batch.v1.{kind}", "batch", "v1", kind)
       for kind in ("Job", "CronJob")},
    **{f"V1{kind}": (f"io.k8s.api.policy.v1.{kind}", "policy", "v1", kind)
       for kind in ("PodDisruptionBudget", "Eviction")},
    "V1Scale": ("io.k8s.api.autoscaling.v1.Scale", "autoscaling", "v1", "Scale"),
    **{f"V1{kind}": (f"io.k8s.api.storage.v1.{kind}", "storage.k8s.io", "v1", kind)
       for kind in ("CSINode", "CSIDriver", "StorageClass")},
    "V1RuntimeClass": ("io.k8s.api.node.v1.RuntimeClass", "node.k8s.io", "v1", "RuntimeClass"),
}
# The workload types' parts, by group: model names that start with one of these.
_PREFIX_GROUPS = (
    (("Deployment", "ReplicaSet", "DaemonSet", "StatefulSet", "RollingUpdateDeployment",
      "RollingUpdateDaemonSet", "RollingUpdateStatefulSet", "ControllerRevision"), "apps"),
    (("Job", "CronJob", "PodFailurePolicy", "SuccessPolicy", "UncountedTerminatedPods"),
     "batch"),
    (("PodDisruptionBudget",), "policy"),
    (("ScaleSpec", "ScaleStatus"), "autoscaling"),
    (("CSINode", "CSIDriver", "VolumeNodeResources"), "storage"),
)
# The types the review kinds are made of, by their group (the rest is core or meta).
_GROUP_OF = {
    **dict.fromkeys(("SelfSubjectAccessReviewSpec", "SubjectAccessReviewSpec",
                     "SubjectAccessReviewStatus", "SelfSubjectRulesReviewSpec",
                     "SubjectRulesReviewStatus", "ResourceAttributes", "NonResourceAttributes",
                     "ResourceRule", "NonResourceRule", "FieldSelectorAttributes",
                     "FieldSelectorRequirement", "LabelSelectorAttributes"), "authorization"),
    **dict.fromkeys(("TokenReviewSpec", "TokenReviewStatus", "UserInfo",
                     "SelfSubjectReviewStatus", "TokenRequestSpec", "TokenRequestStatus",
                     "BoundObjectReference"), "authentication"),
    **dict.fromkeys(("Endpoint", "EndpointConditions", "EndpointHints", "ForZone", "ForNode"),
                    "discovery"),
    **dict.fromkeys(("Overhead", "Scheduling"), "node"),
}
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_INT_OR_STRING_SCHEMA = {
    "format": "int-or-string", "x-kubernetes-int-or-string": True,
    "description": "IntOrString is a type that can hold an int32 or a string.  When used in "
    "JSON or YAML marshalling and unmarshalling, it produces or consumes the inner type.  This "
    "allows you to have, for example, a JSON field that can accept a name or number."}
_META = {"ObjectMeta", "ListMeta", "OwnerReference", "ManagedFieldsEntry", "Status",
         "StatusDetails", "StatusCause", "DeleteOptions", "Preconditions", "LabelSelector",
         "LabelSelectorRequirement", "Condition"}


def _definition_name(model: str) -> str:
    if model in ROOTS:
        return ROOTS[model][0]
    if model.startswith("DiscoveryV1"):  # the client's name for discovery's EndpointPort
        return f"io.k8s.api.discovery.v1.{model[len('DiscoveryV1'):]}"
    if model.startswith("StorageV1"):  # and for storage's CSIDriver TokenRequest
        return f"io.k8s.api.storage.v1.{model[len('StorageV1'):]}"
    m = re.match(r"^(?:CoreV1|V1)(.*)$", model)
    base = m.group(1) if m else model
    if base in _META:
        return f"io.k8s.apimachinery.pkg.apis.meta.v1.{base}"
    if model.startswith("V1Lease"):
        return f"io.k8s.api.coordination.v1.{base}"
    if base in _GROUP_OF:
        return f"io.k8s.api.{_GROUP_OF[base]}.v1.{base}"
    for prefixes, group in _PREFIX_GROUPS:
        if base.startswith(prefixes):
            return f"io.k8s.api.{group}.v1.{base}"
    return f"io.k8s.api.core.v1.{base}"


def _convert(node: object, path: tuple[str, ...] | None) -> object:
    """pydantic JSON schema -> OpenAPI schema; path tracks field names for patch extensions."""
    if isinstance(node, list):
        return [_convert(n, path) for n in node]
    if not isinstance(node, dict):
        return node
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        merged = {k: v for k, v in node.items() if k not in ("anyOf", "default", "title")}
        if sorted(o.get("type", "") for o in options) == ["integer", "string"]:
            # intstr.IntOrString: a reference, as kube's OpenAPI writes it (explain shows it)
            out = _convert(merged, path)
            out["allOf"] = [{"$ref": "#/components/schemas/" + INT_OR_STRING}]
            return out
        if len(options) == 1:
            merged.update(options[0])
        return _convert(merged, path)
    out = {}
    for key, value in node.items():
        if key in ("title", "default", "additionalProperties") and not isinstance(value, dict):
            continue
        if key == "$ref":
            out["$ref"] = "#/components/schemas/" + _definition_name(value.rsplit("/", 1)[-1])
        elif key == "description":
            out[key] = value.split("\n\nAttributes:")[0]
        elif key == "properties":
            props = {}
            for name, schema in value.items():
                child = path + (name,) if path is not None else None
                converted = _convert(schema, child)
                if child is not None and child in MERGE_KEYS:
                    mk = MERGE_KEYS[child]
                    converted["x-kubernetes-patch-strategy"] = "merge"
                    if mk:
                        converted["x-kubernetes-patch-merge-key"] = mk
                        converted["x-kubernetes-list-type"] = "map"
                        converted["x-kubernetes-list-map-keys"] = [mk]
                props[name] = converted
            out[key] = props
        else:
            out[key] = _convert(value, path)
    if out.get("format") == "date-time":
        out["format"] = "date-time"
    return out


# Where a definition sits in an object, for the patch extensions keyed by field path.
_PATHS = {"V1ObjectMeta": ("metadata",), "V1PodSpec": ("spec",), "V1PodStatus": ("status",),
          "V1NodeStatus": ("status",), "V1Container": ("spec", "containers"),
          "V1EphemeralContainer": ("spec", "ephemeralContainers")}


def generate() -> dict:
    import kubernetes.client.models as models
    schemas: dict[str, dict] = {INT_OR_STRING: _INT_OR_STRING_SCHEMA}
    for model, (name, group, version, kind) in ROOTS.items():
        raw = getattr(models, model).model_json_schema(by_alias=True,
                                                       ref_template="#/$defs/{model}")
        for def_name, schema in raw.pop("$defs", {}).items():
            if def_name in ROOTS and ROOTS[def_name][0] in schemas:
                continue  # a root met again inside another keeps its group-version-kind
            schemas[_definition_name(def_name)] = _convert(schema, _PATHS.get(def_name))
        top = _convert(raw, ())
        top["x-kubernetes-group-version-kind"] = [{"group": group, "version": version,
                                                   "kind": kind}]
        schemas[name] = top
    return schemas


if __name__ == "__main__":
    target = os.path.join(os.path.dirname(__file__), "schemas.json")
    schemas = generate()  # before opening: a failure leaves the file as it was
    with open(target, "w") as f:
        json.dump(schemas, f, indent=None, separators=(",", ":"), sort_keys=True)
    print(f"wrote {target}")
