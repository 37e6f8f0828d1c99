"""Label selectors and field selectors in their string form (`app=web,tier in (a,b)`,
`spec.nodeName=n1`), parsed as kube-apiserver parses them; label_selector.py is the
LabelSelector object."""
from __future__ import annotations

import re
from typing import Callable

from kubeapi.status import bad_request

_IN_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(notin|in)\s*\(([^)]*)\)|(==|=|!=|>|<)\s*"
                    r"([A-Za-z0-9_.-]*))?\s*$")

Matcher = Callable[[dict], bool]


def _split_top_level(text: str) -> list[str]:
    """Splits on commas that are not inside parentheses."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in parts if p.strip()]


def parse_label_selector(text: str) -> Matcher:
    """Returns a predicate over a labels dict; raises a 400 ApiError on bad syntax."""
    requirements: list[Matcher] = []
    for part in _split_top_level(text or ""):
        m = _IN_RE.match(part)
        if not m:
            raise bad_request(f'unable to parse requirement: "{part.strip()}"')
        neg, key, setop, values, op, value = m.groups()
        if neg and (setop or op):
            raise bad_request(f'unable to parse requirement: "{part.strip()}"')
        if setop:
            vals = {v.strip() for v in values.split(",") if v.strip()}
            if setop == "in":
                requirements.append(lambda l, k=key, vs=vals: l.get(k) in vs)
            else:
                requirements.append(lambda l, k=key, vs=vals: l.get(k) not in vs)
        elif op in ("=", "=="):
            requirements.append(lambda l, k=key, v=value: l.get(k) == v)
        elif op == "!=":
            requirements.append(lambda l, k=key, v=value: l.get(k) != v)
        elif op in (">", "<"):
            try:
                bound = int(value)
            except ValueError:
                raise bad_request(f'unable to parse requirement: "{part.strip()}": '
                                  "for 'Gt', 'Lt' operators, the value must be an integer")
            requirements.append(lambda l, k=key, b=bound, o=op: _compare(l.get(k), b, o))
        elif neg:
            requirements.append(lambda l, k=key: k not in l)
        else:
            requirements.append(lambda l, k=key: k in l)
    return lambda labels: all(r(labels) for r in requirements)


def _compare(value: str | None, bound: int, op: str) -> bool:
    try:
        number = int(value) if value is not None else None
    except ValueError:
        return False
    if number is None:
        return False
    return number > bound if op == ">" else number < bound


def parse_field_selector(text: str, supported: set[str]) -> Callable[[dict[str, str]], bool]:
    """Returns a predicate over the object's selectable fields ({"metadata.name": ...})."""
    terms: list[tuple[str, bool, str]] = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        for op, equal in (("!=", False), ("==", True), ("=", True)):
            if op in part:
                field, value = part.split(op, 1)
                break
        else:
            raise bad_request(f'invalid selector: \'{part}\'; can\'t understand \'{part}\'')
        field = field.strip()
        if field not in supported:
            raise bad_request(f'field label not supported: {field}')
        terms.append((field, equal, value.strip()))
    return lambda fields: all((fields.get(f, "") == v) == eq for f, eq, v in terms)
