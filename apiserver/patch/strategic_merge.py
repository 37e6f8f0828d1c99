"""Strategic merge patch: JSON merge patch plus Kubernetes' list semantics, keyed the way the
API types' patchStrategy/patchMergeKey tags say (containers by name, ports by containerPort...),
with the directives kubectl sends ($patch, $retainKeys, $setElementOrder,
$deleteFromPrimitiveList)."""
from __future__ import annotations

import copy

from kubeapi.status import bad_request

# Field paths (field names only, list positions left out) -> merge key; "" for primitive lists
# merged as sets. Lists not named here are replaced whole, as atomic lists are.
MERGE_KEYS: dict[tuple[str, ...], str] = {
    ("metadata", "ownerReferences"): "uid",
    ("metadata", "finalizers"): "",
    ("spec", "containers"): "name",
    ("spec", "initContainers"): "name",
    ("spec", "ephemeralContainers"): "name",
    ("spec", "volumes"): "name",
    ("spec", "imagePullSecrets"): "name",
    ("spec", "hostAliases"): "ip",
    ("spec", "resourceClaims"): "name",
    ("spec", "topologySpreadConstraints"): "topologyKey",
    ("spec", "schedulingGates"): "name",
    ("spec", "readinessGates"): "conditionType",
    ("status", "conditions"): "type",
    ("status", "addresses"): "type",
    ("status", "podIPs"): "ip",
    ("status", "hostIPs"): "ip",
    ("status", "images"): "",
}
_CONTAINER_LISTS = {"ports": "containerPort", "env": "name", "volumeMounts": "mountPath",
                    "volumeDevices": "devicePath", "resizePolicy": "resourceName"}
for _kind in ("containers", "initContainers", "ephemeralContainers"):
    for _field, _key in _CONTAINER_LISTS.items():
        MERGE_KEYS[("spec", _kind, _field)] = _key
del _kind, _field, _key
# Pod templates (Deployment, ReplicaSet, DaemonSet, StatefulSet, Job; a CronJob's job
# template) merge their pod spec as a pod does.
for _pod_path in [p for p in MERGE_KEYS if p[0] == "spec"]:
    for _template in (("spec", "template"), ("spec", "jobTemplate", "spec", "template")):
        MERGE_KEYS[_template + _pod_path] = MERGE_KEYS[_pod_path]
del _pod_path, _template
MERGE_KEYS[("spec", "ports")] = "port"  # a Service's

_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVES = "$deleteFromPrimitiveList/"


def merge_key(path: tuple[str, ...]) -> str | None:
    """The merge key of the list at path, "" for a merged primitive list, None if atomic."""
    return MERGE_KEYS.get(path)


def strategic_merge(original: object, patch: object, path: tuple[str, ...] = ()) -> object:
    """Returns original with patch applied; neither argument is modified."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(original, dict):
        original = {}
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    if directive not in (None, "merge"):
        raise bad_request(f"unknown patch type: {directive!r}")
    result = dict(original)
    orders: dict[str, list] = {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith(_ORDER):
            orders[key[len(_ORDER):]] = value
            continue
        if key.startswith(_DELETE_PRIMITIVES):
            field = key[len(_DELETE_PRIMITIVES):]
            if isinstance(result.get(field), list) and isinstance(value, list):
                result[field] = [v for v in result[field] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
            continue
        child = path + (key,)
        mk = merge_key(child)
        if isinstance(value, list) and mk is not None:
            result[key] = _merge_list(result.get(key), value, child, mk)
        elif isinstance(value, dict):
            merged = strategic_merge(result.get(key), value, child)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = copy.deepcopy(value)
    for field, order in orders.items():
        if isinstance(result.get(field), list) and isinstance(order, list):
            result[field] = _ordered(result[field], order, merge_key(path + (field,)))
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(original: object, patch: list, path: tuple[str, ...], key: str) -> list:
    items = list(original) if isinstance(original, list) else []
    if not key:  # primitive list merged as a set
        return items + [v for v in patch if v not in items]
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [copy.deepcopy(p) for p in patch
                if not (isinstance(p, dict) and "$patch" in p)]
    for p in patch:
        if not isinstance(p, dict) or key not in p:
            raise bad_request(f"map: {p!r} does not contain declared merge key: {key}")
        index = next((i for i, o in enumerate(items)
                      if isinstance(o, dict) and o.get(key) == p[key]), None)
        if p.get("$patch") == "delete":
            if index is not None:
                del items[index]
            continue
        if index is None:
            items.append(strategic_merge({}, p, path))
        else:
            items[index] = strategic_merge(items[index], p, path)
    return items


def _ordered(items: list, order: list, key: str | None) -> list:
    def ident(item: object) -> object:
        return item.get(key) if key and isinstance(item, dict) else item
    wanted = [o.get(key) if key and isinstance(o, dict) else o for o in order]
    position = {repr(v): i for i, v in enumerate(wanted)}
    return sorted(items, key=lambda it: position.get(repr(ident(it)), len(position)))
