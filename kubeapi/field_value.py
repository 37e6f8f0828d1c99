"""The bad value in a field error as kube-apiserver (1.34 and later) prints it: numbers and
booleans as they are, strings quoted, anything else as Go's json.Marshal writes it (compact,
map keys sorted, struct fields in the type's order, <>& escaped), e.g.
`spec.selector: Invalid value: {"matchLabels":{"app":"web"}}: field is immutable`."""
from __future__ import annotations

import json

# Struct field order of the API types whose values show up in workload errors.
_LABEL_SELECTOR = ("matchLabels", "matchExpressions")
_REQUIREMENT = ("key", "operator", "values")
_OWNER_REFERENCE = ("apiVersion", "kind", "name", "uid", "controller", "blockOwnerDeletion")


def _go_json(value: object) -> str:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _struct(value: dict, order: tuple[str, ...], fields: dict | None = None) -> str:
    """A struct: fields in order, empty ones left out (omitempty); fields maps a field to
    the renderer of its value."""
    parts = []
    for name in order:
        if value.get(name) in (None, "", [], {}):
            continue
        render = (fields or {}).get(name, _go_json)
        parts.append(f"{_go_json(name)}:{render(value[name])}")
    return "{" + ",".join(parts) + "}"


def render(value: object) -> str:
    """A scalar or a map; maps render with sorted keys as Go's maps do."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return _go_json(value)


def label_selector(sel: object) -> str:
    if not isinstance(sel, dict):
        return "null"
    return _struct(sel, _LABEL_SELECTOR, {"matchExpressions": lambda exprs: "[" + ",".join(
        _struct(e, _REQUIREMENT) if isinstance(e, dict) else render(e) for e in exprs) + "]"})


def owner_references(refs: list) -> str:
    return "[" + ",".join(_struct(r, _OWNER_REFERENCE) if isinstance(r, dict) else render(r)
                          for r in refs) + "]"


def go_struct(value: object, fields: tuple) -> str:
    """An internal (untagged) Go struct: every field under its Go name, nil ones as null. A
    field is a name, or (name, fields) for a nested internal struct; `selector` is a
    metav1.LabelSelector."""
    if not isinstance(value, dict):
        return "null"

    def field(spec: object) -> str:
        name, inner_fields = spec if isinstance(spec, tuple) else (spec, None)
        inner = value.get(name)
        if inner_fields is not None:
            shown = go_struct(inner, inner_fields)
        elif name == "selector":
            shown = label_selector(inner)
        else:
            shown = render(inner)
        return f"{_go_json(name[0].upper() + name[1:])}:{shown}"
    return "{" + ",".join(field(f) for f in fields) + "}"
