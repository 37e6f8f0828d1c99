"""JSON patch (RFC 6902): add, remove, replace, move, copy and test on JSON pointers."""
from __future__ import annotations

import copy

from kubeapi.status import ApiError, bad_request


class PatchError(ValueError):
    pass


def _tokens(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"JSON pointer must start with '/': {pointer!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _index(container: list, token: str, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token[0] == "0"):
        raise PatchError(f"invalid array index {token!r}")
    i = int(token)
    if i > len(container) or (i == len(container) and not allow_end):
        raise PatchError(f"array index {i} out of bounds")
    return i


def _parent(doc: object, tokens: list[str]) -> object:
    node = doc
    for t in tokens[:-1]:
        if isinstance(node, dict):
            if t not in node:
                raise PatchError(f"path element {t!r} not found")
            node = node[t]
        elif isinstance(node, list):
            node = node[_index(node, t, False)]
        else:
            raise PatchError(f"cannot descend into a scalar at {t!r}")
    return node


def _get(doc: object, pointer: str) -> object:
    tokens = _tokens(pointer)
    if not tokens:
        return doc
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path {pointer!r} not found")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, False)]
    raise PatchError(f"path {pointer!r} not found")


def _add(doc: object, pointer: str, value: object) -> object:
    tokens = _tokens(pointer)
    if not tokens:
        return value
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, True), value)
    else:
        raise PatchError(f"cannot add at {pointer!r}")
    return doc


def _remove(doc: object, pointer: str) -> object:
    tokens = _tokens(pointer)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"unable to remove nonexistent key: {last}")
        del parent[last]
    elif isinstance(parent, list):
        del parent[_index(parent, last, False)]
    else:
        raise PatchError(f"cannot remove at {pointer!r}")
    return doc


def json_patch(doc: object, operations: object) -> object:
    """Applies the operations to a copy of doc; raises a 422-style ApiError on failure."""
    if not isinstance(operations, list):
        raise bad_request("json patch must be a list of operations")
    doc = copy.deepcopy(doc)
    try:
        for op in operations:
            if not isinstance(op, dict) or "op" not in op or "path" not in op:
                raise PatchError("each operation needs 'op' and 'path'")
            kind, path = op["op"], op["path"]
            if kind in ("add", "replace", "test") and "value" not in op:
                raise PatchError(f"operation {kind} needs 'value'")
            if kind == "add":
                doc = _add(doc, path, copy.deepcopy(op["value"]))
            elif kind == "remove":
                doc = _remove(doc, path)
            elif kind == "replace":
                _get(doc, path)
                doc = _add(_remove(doc, path), path, copy.deepcopy(op["value"])) \
                    if _tokens(path) else copy.deepcopy(op["value"])
            elif kind in ("move", "copy"):
                value = copy.deepcopy(_get(doc, op.get("from", "")))
                if kind == "move":
                    doc = _remove(doc, op["from"])
                doc = _add(doc, path, value)
            elif kind == "test":
                if _get(doc, path) != op["value"]:
                    raise PatchError(f"testing value {path} failed")
            else:
                raise PatchError(f"unexpected op {kind!r}")
    except PatchError as e:
        raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our "
                       f"request: {e}")
    return doc
