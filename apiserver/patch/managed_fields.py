"""Field sets as kube-apiserver's managedFields hold them (structured-merge-diff's fieldpath):
a set of paths, each path a tuple of elements ("f", field name), ("k", item keys as JSON),
("v", set item as JSON) or ("i", index). Sets are Python sets, so union, difference and
intersection are the set operators.

Built from an object (what an applier sets), from the difference of two objects (what an
update added, modified or removed), and to and from the FieldsV1 JSON form:
{"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from .typed_schema import UNTYPED, Type, shape_of

Element = tuple[str, str]
Path = tuple[Element, ...]
FieldSet = set[Path]

_KINDS = "fkvi"


class _Missing:
    """A value absent from its parent (not JSON null)."""


MISSING = _Missing()


def go_json(value: object, sort_keys: bool = False) -> str:
    """Compact JSON as Go's encoding/json writes it (no spaces, HTML characters escaped; a
    Go map's keys sorted)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def item_element(t: Type, item: object) -> Element | None:
    """The element naming a list item: its key fields for an associative list, its value for
    a set; None when the item cannot be named (then the list is treated as atomic)."""
    if t.list_type == "set":
        return ("v", go_json(item)) if not isinstance(item, (dict, list)) else None
    if not isinstance(item, dict):
        return None
    keys = {}
    for name in sorted(t.keys):
        if name in item:
            keys[name] = item[name]
        elif t.key_default(name) is not None:
            keys[name] = t.key_default(name)
    return ("k", go_json(keys)) if keys else None


def _item_elements(t: Type, items: list) -> list[Element] | None:
    out = [item_element(t, item) for item in items]
    return None if any(e is None for e in out) else out  # type: ignore[return-value]


def _granular_list(t: Type, value: object) -> bool:
    return t.kind == "list" and t.list_type != "atomic" and isinstance(value, list)


def _granular_map(t: Type, value: object) -> bool:
    return t.kind in ("struct", "map") and not t.atomic and isinstance(value, dict)


def child_type(t: Type, name: str) -> tuple[Type, bool]:
    """The type of field `name` of a struct or map, and whether it is a struct's named field."""
    if t.kind == "struct":
        sub = t.field(name)
        return (sub, True) if sub is not None else (UNTYPED, False)
    return (t.elem() if t.kind == "map" else UNTYPED), False


# building sets


def from_object(value: object, t: Type) -> FieldSet:
    """The fields an object sets, as an applier owns them: leaves, list items, atomic values,
    empty or null map entries and entries of free-form maps."""
    out: FieldSet = set()
    _walk_object(value, t, (), out)
    return out


def _walk_object(value: object, t: Type, path: Path, out: FieldSet) -> None:
    t = shape_of(t, value)
    if _granular_list(t, value):
        elements = _item_elements(t, value)  # type: ignore[arg-type]
        if elements is None:
            out.add(path)
            return
        for item, element in zip(value, elements):  # type: ignore[arg-type]
            child = path + (element,)
            _walk_object(item, t.elem(), child, out)
            out.add(child)
    elif _granular_map(t, value):
        for name, sub in value.items():  # type: ignore[union-attr]
            child = path + (("f", name),)
            sub_type, named = child_type(t, name)
            _walk_object(sub, sub_type, child, out)
            if sub is None or sub == {} or not named:
                out.add(child)
    elif value is not None:
        # A scalar, an atomic list or map, or a value that does not fit its schema: one leaf.
        # (A null is owned through its parent's entry.)
        out.add(path)


@dataclass
class Comparison:
    """What changed from one object to the next, field by field."""
    added: FieldSet = field(default_factory=set)
    modified: FieldSet = field(default_factory=set)
    removed: FieldSet = field(default_factory=set)

    def changed(self) -> FieldSet:
        return self.added | self.modified


def compare(old: object, new: object, t: Type) -> Comparison:
    """Added, modified and removed fields from old to new (MISSING: no object)."""
    result = Comparison()
    _compare(old, new, t, (), result)
    result.added.discard(())
    result.removed.discard(())
    return result


def _empty(value: object) -> bool:
    return value is MISSING or value is None or value == {} or value == []


def _compare(old: object, new: object, t: Type, path: Path, out: Comparison) -> None:
    t = shape_of(t, new if new is not MISSING else old)
    both_empty = _empty(old) and _empty(new)
    lists = all(isinstance(v, list) or v is None or v is MISSING for v in (old, new))
    maps = all(isinstance(v, dict) or v is None or v is MISSING for v in (old, new))
    granular = not both_empty and (
        (t.kind == "list" and t.list_type != "atomic" and lists) or
        (t.kind in ("struct", "map") and not t.atomic and maps))
    if not granular:
        if old is MISSING:
            out.added.add(path)
        elif new is MISSING:
            out.removed.add(path)
        elif old != new:
            out.modified.add(path)
        return
    if t.kind == "list":
        if not _compare_items(old, new, t, path, out):
            if old != new:
                out.modified.add(path)
            return
    else:
        olds = old if isinstance(old, dict) else {}
        news = new if isinstance(new, dict) else {}
        for name in list(olds) + [k for k in news if k not in olds]:
            sub_type, _ = child_type(t, name)
            _compare(olds.get(name, MISSING), news.get(name, MISSING), sub_type,
                     path + (("f", name),), out)
    if old is MISSING:
        out.added.add(path)
    elif new is MISSING:
        out.removed.add(path)


def _compare_items(old: object, new: object, t: Type, path: Path, out: Comparison) -> bool:
    """Compares list items by their elements; False if an item cannot be named."""
    olds = old if isinstance(old, list) else []
    news = new if isinstance(new, list) else []
    old_elements, new_elements = _item_elements(t, olds), _item_elements(t, news)
    if old_elements is None or new_elements is None:
        return False
    before: dict[Element, list] = {}
    after: dict[Element, list] = {}
    for element, item in zip(old_elements, olds):
        before.setdefault(element, []).append(item)
    for element, item in zip(new_elements, news):
        after.setdefault(element, []).append(item)
    for element in list(before) + [e for e in after if e not in before]:
        lhs, rhs = before.get(element, []), after.get(element, [])
        child = path + (element,)
        if len(lhs) > 1 or len(rhs) > 1:
            # Duplicated items are compared as one atomic value, as structured-merge-diff does.
            if not lhs:
                out.added.add(child)
            elif not rhs:
                out.removed.add(child)
            elif lhs != rhs:
                out.modified.add(child)
            continue
        _compare(lhs[0] if lhs else MISSING, rhs[0] if rhs else MISSING, t.elem(), child, out)
    return True


# helpers over paths


def named_prefixes(paths: FieldSet, t: Type) -> FieldSet:
    """The paths, plus each of their prefixes that ends in a struct's named field
    (structured-merge-diff's EnsureNamedFieldsAreMembers)."""
    out = set(paths)
    for path in paths:
        node = t
        for i, (kind, text) in enumerate(path):
            if kind == "f":
                node, named = child_type(node, text)
                if named and i + 1 < len(path):
                    out.add(path[:i + 1])
            elif node.kind in ("list", "untyped"):
                node = node.elem()
            else:
                break
    return out


def prefixes(paths: FieldSet) -> FieldSet:
    """Every proper prefix of the paths."""
    return {path[:i] for path in paths for i in range(len(path))}


def without(paths: FieldSet, drop: FieldSet) -> FieldSet:
    """paths less those equal to or under a path of drop."""
    return {p for p in paths if not any(p[:i] in drop for i in range(1, len(p) + 1))}


def path_string(path: Path) -> str:
    """The path as kube-apiserver prints it: .spec.containers[name="c"].image"""
    out = []
    for kind, text in path:
        if kind == "f":
            out.append("." + text)
        elif kind == "k":
            keys = json.loads(text)
            out.append("[" + ",".join(f"{k}={_value_string(v)}" for k, v in keys.items()) + "]")
        elif kind == "v":
            out.append(f"[={_value_string(json.loads(text))}]")
        else:
            out.append(f"[{text}]")
    return "".join(out)


def _value_string(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(_value_string(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ";".join(f"{k}={_value_string(v)}" for k, v in sorted(value.items())) + "}"
    return str(value)


# the FieldsV1 form


def _sort_key(element: Element) -> tuple:
    """structured-merge-diff's order: fields, then keys, values, indexes; keys and values by
    what they hold (numbers as numbers)."""
    kind, text = element
    if kind == "f":
        return (0, text)
    if kind == "i":
        return (3, int(text))
    value = json.loads(text)
    if kind == "k":
        return (1, [(name, _value_key(v)) for name, v in sorted(value.items())])
    return (2, _value_key(value))


def _value_key(value: object) -> tuple:
    if value is None:
        return (0,)
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, (int, float)):
        return (2, value)
    if isinstance(value, str):
        return (3, value)
    if isinstance(value, list):
        return (4, [_value_key(v) for v in value])
    return (5, sorted((k, _value_key(v)) for k, v in value.items()))  # type: ignore[union-attr]


def to_json(paths: FieldSet) -> dict:
    """The FieldsV1 object of a set: a path that is both a member and a parent gets "."."""
    children: dict[Path, set[Element]] = {}
    for path in paths:
        for i in range(len(path)):
            children.setdefault(path[:i], set()).add(path[i])

    def emit(path: Path) -> dict:
        node: dict = {}
        subs = children.get(path, set())
        if path in paths and subs and path:
            node["."] = {}
        for element in sorted(subs, key=_sort_key):
            node[f"{element[0]}:{element[1]}"] = emit(path + (element,))
        return node

    return emit(())


def from_json(tree: object, path: Path = ()) -> FieldSet:
    """The set a FieldsV1 object describes; ValueError naming the bad key if it is not one."""
    if not isinstance(tree, dict):
        raise ValueError(f"expected an object at {path_string(path) or '.'}")
    out: FieldSet = set()
    if path and (not tree or "." in tree):
        out.add(path)
    for key, sub in tree.items():
        if key == ".":
            continue
        kind, sep, text = key.partition(":")
        if not sep or kind not in _KINDS:
            raise ValueError(f"unknown path element {key!r}")
        if kind in "kv":
            try:
                value = json.loads(text)
            except ValueError:
                raise ValueError(f"invalid path element {key!r}")
            if kind == "k" and not isinstance(value, dict):
                raise ValueError(f"invalid path element {key!r}")
            if kind == "k":
                text = go_json(dict(sorted(value.items())))
            else:
                text = go_json(value)
        elif kind == "i" and not text.lstrip("-").isdigit():
            raise ValueError(f"invalid path element {key!r}")
        out |= from_json(sub, path + ((kind, text),))
    return out
