"""Server-side apply (application/apply-patch+yaml), reduced to what a single-cluster tool
needs: the applied configuration is merged strategically into the live object (or creates
it), each manager's applied fields are recorded in metadata.managedFields (FieldsV1), and a
field that a manager applied before and no longer applies is removed unless another applier
still owns it. Ownership conflicts between managers are not detected: the last apply wins."""
from __future__ import annotations

import copy
import json

from .strategic_merge import merge_key, strategic_merge

Path = tuple[tuple[str, str], ...]


def _names(path: Path) -> tuple[str, ...]:
    return tuple(v for t, v in path if t == "f")


def field_set(obj: dict, path: Path = ()) -> set[Path]:
    """The leaf fields (and keyed list items) that obj sets, as FieldsV1 paths."""
    out: set[Path] = set()
    for key, value in obj.items():
        if not path and key in ("apiVersion", "kind"):
            continue
        child = path + (("f", key),)
        mk = merge_key(_names(child)) if isinstance(value, list) else None
        if isinstance(value, dict) and value:
            out |= field_set(value, child)
        elif isinstance(value, list) and mk is not None:
            for item in value:
                if mk == "":
                    out.add(child + (("v", json.dumps(item, sort_keys=True)),))
                elif isinstance(item, dict) and mk in item:
                    item_path = child + (("k", json.dumps({mk: item[mk]})),)
                    out.add(item_path)
                    out |= field_set({k: v for k, v in item.items() if k != mk}, item_path)
        else:
            out.add(child)
    return out


def to_fields_v1(fields: set[Path]) -> dict:
    root: dict = {}
    for path in sorted(fields):
        node = root
        for kind, value in path:
            node = node.setdefault(f"{kind}:{value}", {})
        if path and path[-1][0] == "k":
            node["."] = {}
    return root


def from_fields_v1(tree: dict, path: Path = ()) -> set[Path]:
    out: set[Path] = set()
    for key, sub in (tree or {}).items():
        if key == ".":
            out.add(path)
            continue
        kind, _, value = key.partition(":")
        child = path + ((kind, value),)
        if sub:
            out |= from_fields_v1(sub, child)
        else:
            out.add(child)
    return out


def _remove(obj: dict, path: Path) -> None:
    node: object = obj
    for i, (kind, value) in enumerate(path):
        last = i == len(path) - 1
        if kind == "f" and isinstance(node, dict):
            if last:
                node.pop(value, None)
                return
            node = node.get(value)
        elif kind in ("k", "v") and isinstance(node, list):
            want = json.loads(value)
            for j, item in enumerate(node):
                hit = (isinstance(item, dict) and all(item.get(k) == v for k, v in want.items())
                       if kind == "k" else item == want)
                if hit:
                    if last:
                        del node[j]
                        return
                    node = item
                    break
            else:
                return
        else:
            return


def apply(live: dict | None, config: dict, manager: str, api_version: str,
          time: str) -> dict:
    """The object after `manager` applies `config` to `live` (None: create)."""
    config = copy.deepcopy(config)
    config.get("metadata", {}).pop("managedFields", None)
    applied = field_set(config)
    entry = {"manager": manager, "operation": "Apply", "apiVersion": api_version, "time": time,
             "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(applied)}
    if live is None:
        config.setdefault("metadata", {})["managedFields"] = [entry]
        return config
    entries = (live.get("metadata") or {}).get("managedFields") or []
    mine = [e for e in entries if e.get("manager") == manager and e.get("operation") == "Apply"]
    others = [e for e in entries if e not in mine]
    before = set().union(*(from_fields_v1(e.get("fieldsV1")) for e in mine)) if mine else set()
    kept = set().union(*(from_fields_v1(e.get("fieldsV1")) for e in others
                         if e.get("operation") == "Apply")) if others else set()
    result = strategic_merge(live, config)
    for path in sorted(before - applied - kept, key=len, reverse=True):
        _remove(result, path)
    result.setdefault("metadata", {})["managedFields"] = others + [entry]
    return result
