"""The shape of each API type as server-side apply sees it (structured-merge-diff's schema):
structs with named fields, maps with free keys, lists that are atomic, sets (`v:` items) or
associative by key fields (`k:` items). Read from openapi/schemas.json by the
x-kubernetes-group-version-kind of the root type; a type with no schema is "deduced": objects
are maps, lists are atomic.

openapi/schemas.json carries the list types of strategic merge patch; where server-side apply
keys a list differently (the +listType/+listMapKey tags of kube's Go types), _SMD_LISTS says
so, and _ATOMIC_STRUCTS/_ATOMIC_MAPS name what they tag +structType/+mapType=atomic."""
from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass

_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_ATOMIC: tuple[str, tuple[str, ...]] = ("atomic", ())
# The +listType/+listMapKey tags of kube's Go types (k8s.io/api core, apps, batch, discovery,
# policy; apimachinery meta) where they differ from the patch strategy that
# openapi/schemas.json carries: (type name, property) -> (list type, key fields).
_SMD_LISTS: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    ("ObjectMeta", "finalizers"): ("set", ()),
    ("Container", "ports"): ("map", ("containerPort", "protocol")),
    ("EphemeralContainer", "ports"): ("map", ("containerPort", "protocol")),
    ("Container", "resizePolicy"): _ATOMIC,
    ("EphemeralContainer", "resizePolicy"): _ATOMIC,
    ("ContainerStatus", "volumeMounts"): ("map", ("mountPath",)),
    ("ContainerStatus", "allocatedResourcesStatus"): ("map", ("name",)),
    ("ResourceStatus", "resources"): ("map", ("resourceID",)),
    ("ContainerRestartRuleOnExitCodes", "values"): ("set", ()),
    ("VolumeMount", "bindMountOptions"): ("set", ()),
    ("ResourceRequirements", "claims"): ("map", ("name",)),
    ("PodSpec", "topologySpreadConstraints"): ("map", ("topologyKey", "whenUnsatisfiable")),
    ("PodSpec", "readinessGates"): _ATOMIC,
    ("PodSpec", "evictionResponders"): ("map", ("name",)),
    ("PodStatus", "hostIPs"): _ATOMIC,
    ("PodStatus", "resourceClaimStatuses"): ("map", ("name",)),
    ("PodStatus", "nodeAllocatableResourceClaimStatuses"): ("map", ("resourceClaimName",)),
    ("PodStatus", "volumeHealth"): ("map", ("name",)),
    ("PodVolumeHealth", "healthConditions"): ("map", ("status", "reason")),
    ("VolumeHealthStatus", "healthConditions"): ("map", ("status", "reason")),
    ("PersistentVolumeClaimStatus", "conditions"): ("map", ("type",)),
    ("NodeSpec", "podCIDRs"): ("set", ()),
    ("NodePodPreemptionPolicy", "disableResizePreemption"): ("set", ()),
    ("NodeAllocatableResourceClaimStatus", "containers"): ("set", ()),
    ("NodeAllocatableResourceClaimStatus", "mapping"): ("map", ("name",)),
    ("NodeAllocatableResourceClaimStatus", "overhead"): ("map", ("name",)),
    ("NamespaceStatus", "conditions"): ("map", ("type",)),
    ("ServiceSpec", "ports"): ("map", ("port", "protocol")),
    ("ServiceStatus", "conditions"): ("map", ("type",)),
    ("ServiceAccount", "secrets"): ("map", ("name",)),
    ("DeploymentStatus", "conditions"): ("map", ("type",)),
    ("ReplicaSetStatus", "conditions"): ("map", ("type",)),
    ("StatefulSetStatus", "conditions"): ("map", ("type",)),
    ("DaemonSetStatus", "conditions"): ("map", ("type",)),
    ("PodFailurePolicyOnExitCodesRequirement", "values"): ("set", ()),
    ("JobSchedulingConfiguration", "resourceClaims"): ("map", ("name",)),
    ("UncountedTerminatedPods", "succeeded"): ("set", ()),
    ("UncountedTerminatedPods", "failed"): ("set", ()),
    ("Endpoint", "addresses"): ("set", ()),
    ("PodDisruptionBudgetStatus", "conditions"): ("map", ("type",)),
}
# Types kube tags +structType=atomic, and maps it tags +mapType=atomic: owned whole.
_ATOMIC_STRUCTS = frozenset({
    "ConfigMapKeySelector", "EndpointAddress", "EndpointPort", "EvictionResponder",
    "FileKeySelector", "LabelSelector", "LocalObjectReference", "NodeSelector",
    "NodeSelectorTerm", "ObjectFieldSelector", "ObjectReference", "OwnerReference",
    "ResourceFieldSelector", "SecretKeySelector", "TypedLocalObjectReference"})
_ATOMIC_MAPS = frozenset({("PodSpec", "nodeSelector"), ("ServiceSpec", "selector")})
# Key fields that may be left out of an item because the API defaults them.
_KEY_DEFAULTS = {("ContainerPort", "protocol"): "TCP", ("ServicePort", "protocol"): "TCP"}


@dataclass(frozen=True)
class Type:
    """One node of the schema. kind: struct, map, list, scalar or untyped (deduced from the
    value). For lists, list_type is atomic, set or map (keys name the key fields)."""
    kind: str
    node: dict
    list_type: str = "atomic"
    keys: tuple[str, ...] = ()
    atomic: bool = False

    def field(self, name: str) -> "Type | None":
        """The type of a struct's named field, None if the struct has no such field."""
        prop = self.node.get("properties", {}).get(name)
        return None if prop is None else _type(prop)

    def elem(self) -> "Type":
        """The type of a map's values or a list's items."""
        sub = self.node.get("additionalProperties" if self.kind == "map" else "items")
        return _type(sub) if isinstance(sub, dict) and sub else UNTYPED

    def key_default(self, key: str) -> object:
        """The default of an associative list item's key field, None without one."""
        item = _resolve(self.node.get("items") or {})
        return (item.get("properties", {}).get(key) or {}).get("default")


UNTYPED = Type("untyped", {})


@functools.lru_cache(maxsize=1)
def _schemas() -> dict[str, dict]:
    with open(os.path.join(os.path.dirname(__file__), "..", "openapi", "schemas.json")) as f:
        schemas = json.load(f)
    for name, node in schemas.items():
        short = name.rsplit(".", 1)[-1]
        if short in _ATOMIC_STRUCTS:
            node["x-kubernetes-map-type"] = "atomic"
        for prop, sub in (node.get("properties") or {}).items():
            if (short, prop) in _SMD_LISTS:
                list_type, keys = _SMD_LISTS[short, prop]
                sub["x-kubernetes-list-type"] = list_type
                sub["x-kubernetes-list-map-keys"] = list(keys)
            if (short, prop) in _ATOMIC_MAPS:
                sub["x-kubernetes-map-type"] = "atomic"
            if (short, prop) in _KEY_DEFAULTS:
                sub["default"] = _KEY_DEFAULTS[short, prop]
    return schemas


def _resolve(node: dict) -> dict:
    while True:
        if "$ref" in node:
            node = _schemas().get(node["$ref"].rsplit("/", 1)[-1], {})
        elif len(node.get("allOf") or []) == 1:
            node = node["allOf"][0]
        else:
            return node


def _type(node: dict) -> Type:
    node = _resolve(node)
    atomic = node.get("x-kubernetes-map-type") == "atomic"
    if "properties" in node:
        return Type("struct", node, atomic=atomic)
    if "additionalProperties" in node:
        return Type("map", node, atomic=atomic)
    if node.get("type") == "array":
        list_type = node.get("x-kubernetes-list-type", "atomic")
        keys = tuple(node.get("x-kubernetes-list-map-keys") or ())
        if list_type == "map" and not keys:
            list_type = "atomic"
        return Type("list", node, list_type=list_type, keys=keys)
    if node.get("type") in ("string", "integer", "number", "boolean") or \
            node.get("x-kubernetes-int-or-string"):
        return Type("scalar", node)
    return UNTYPED


# A kind without a schema: its metadata is still ObjectMeta, the rest is deduced.
_DEDUCED_ROOT = {"properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                "metadata": {"$ref": "#/components/schemas/" + _META +
                                             "ObjectMeta"}}}


@functools.lru_cache(maxsize=64)
def root_type(api_version: str, kind: str) -> Type:
    """The schema of the object kind at api_version."""
    group, _, version = api_version.rpartition("/")
    for node in _schemas().values():
        for gvk in node.get("x-kubernetes-group-version-kind") or ():
            if (gvk.get("group", ""), gvk.get("version"), gvk.get("kind")) == \
                    (group, version, kind):
                return _type(node)
    return Type("struct", _DEDUCED_ROOT)


def shape_of(t: Type, value: object) -> Type:
    """t, or for an untyped node the shape the value has (objects are maps, lists atomic)."""
    if t.kind != "untyped":
        return t
    if isinstance(value, dict):
        return Type("map", {}, atomic=False)
    if isinstance(value, list):
        return Type("list", {})
    return Type("scalar", {})
