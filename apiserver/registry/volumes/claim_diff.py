"""A PersistentVolumeClaim's spec as kube-apiserver shows it in the error of a forbidden spec
change: the Go struct of its internal type as JSON (field names without JSON tags, one space of
indent), two specs compared as kube's semantic equality does, and their difference as a unified
diff with three lines of context and no file header."""
from __future__ import annotations

import difflib
import json

from kubeapi.quantity import parse_quantity

# Go's encoder escapes these even in a string that does not need it.
_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
               "\u2029": "\\u2029"}


def _quantities(values: object) -> dict | None:
    if not isinstance(values, dict):
        return None
    return {k: values[k] for k in sorted(values)}


def _selector(selector: object) -> dict | None:
    """A metav1.LabelSelector: an external type, so its JSON tags (and omitempty) hold."""
    if not isinstance(selector, dict):
        return None
    out: dict = {}
    if selector.get("matchLabels"):
        out["matchLabels"] = {k: selector["matchLabels"][k]
                              for k in sorted(selector["matchLabels"])}
    if selector.get("matchExpressions"):
        out["matchExpressions"] = [
            {"key": e.get("key", ""), "operator": e.get("operator", ""),
             **({"values": e["values"]} if e.get("values") else {})}
            for e in selector["matchExpressions"] if isinstance(e, dict)]
    return out


def _reference(ref: object, namespaced: bool) -> dict | None:
    if not isinstance(ref, dict):
        return None
    out = {"APIGroup": ref.get("apiGroup"), "Kind": ref.get("kind", ""),
           "Name": ref.get("name", "")}
    if namespaced:
        out["Namespace"] = ref.get("namespace")
    return out


def go_spec(spec: dict) -> dict:
    """core.PersistentVolumeClaimSpec's fields in their Go order, unset ones as Go's zero."""
    resources = spec.get("resources") if isinstance(spec.get("resources"), dict) else {}
    return {
        "AccessModes": spec.get("accessModes"),
        "Selector": _selector(spec.get("selector")),
        "Resources": {"Limits": _quantities(resources.get("limits")),
                      "Requests": _quantities(resources.get("requests"))},
        "VolumeName": spec.get("volumeName") or "",
        "StorageClassName": spec.get("storageClassName"),
        "VolumeMode": spec.get("volumeMode"),
        "DataSource": _reference(spec.get("dataSource"), False),
        "DataSourceRef": _reference(spec.get("dataSourceRef"), True),
        "VolumeAttributesClassName": spec.get("volumeAttributesClassName"),
    }


def _semantic(value: object, quantity: bool = False) -> object:
    """Empty and nil alike, quantities by their value: kube's apiequality.Semantic."""
    if isinstance(value, dict):
        return {k: _semantic(v, quantity or k in ("Limits", "Requests"))
                for k, v in value.items()} or None
    if isinstance(value, list):
        return [_semantic(v) for v in value] or None
    if quantity and value is not None:
        try:
            return parse_quantity(str(value))
        except ValueError:
            return value
    return value


def comparable(spec: dict) -> object:
    return _semantic(go_spec(spec))


def _go_json(value: object) -> str:
    text = json.dumps(value, indent=1, ensure_ascii=False)
    for char, escaped in _GO_ESCAPES.items():
        text = text.replace(char, escaped)
    return text


def diff(old: dict, new: dict) -> str:
    """The two specs' difference as kube's error prints it (it ends with a newline)."""
    lines = [_go_json(go_spec(s)).split("\n") for s in (old, new)]
    a, b = ([line + "\n" for line in each] for each in lines)
    out = list(difflib.unified_diff(a, b, n=3))
    return "".join(out[2:])  # no ---/+++ header
