"""The shape of each API type as server-side apply sees it (structured-merge-diff's schema):
structs with named fields, maps with free keys, lists that are atomic, sets (`v:` items) or
associative by key fields (`k:` items). Read from openapi_schemas.json by the
x-kubernetes-group-version-kind of the root type; a type with no schema is "deduced": objects
are maps, lists are atomic.

openapi_schemas.json carries the list types of strategic merge patch; where server-side apply
keys a list differently (kube-apiserver's +listType/+listMapKey tags), _SMD_LISTS says so."""
from __future__ import annotations

import copy
import functools
import json
import os
from dataclasses import dataclass

_CORE = "io.k8s.api.core.v1."
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_ATOMIC: tuple[str, tuple[str, ...]] = ("atomic", ())
# (definition, property) -> (list type, key fields), as kube's Go types declare them.
_SMD_LISTS: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    (_META + "ObjectMeta", "finalizers"): ("set", ()),
    (_CORE + "Container", "ports"): ("map", ("containerPort", "protocol")),
    (_CORE + "EphemeralContainer", "ports"): ("map", ("containerPort", "protocol")),
    (_CORE + "Container", "resizePolicy"): _ATOMIC,
    (_CORE + "EphemeralContainer", "resizePolicy"): _ATOMIC,
    (_CORE + "PodSpec", "topologySpreadConstraints"): ("map", ("topologyKey",
                                                               "whenUnsatisfiable")),
    (_CORE + "PodSpec", "readinessGates"): _ATOMIC,
    (_CORE + "NodeSpec", "podCIDRs"): ("set", ()),
}
# Key fields that may be left out of an item because the API defaults them.
_KEY_DEFAULTS: dict[tuple[str, str], object] = {(_CORE + "ContainerPort", "protocol"): "TCP"}


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
    with open(os.path.join(os.path.dirname(__file__), "..", "openapi_schemas.json")) as f:
        schemas = json.load(f)
    schemas = copy.deepcopy(schemas)
    for (definition, prop), (list_type, keys) in _SMD_LISTS.items():
        node = schemas.get(definition, {}).get("properties", {}).get(prop)
        if node is not None:
            node["x-kubernetes-list-type"] = list_type
            node["x-kubernetes-list-map-keys"] = list(keys)
    for (definition, prop), default in _KEY_DEFAULTS.items():
        node = schemas.get(definition, {}).get("properties", {}).get(prop)
        if node is not None:
            node["default"] = default
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
