"""metav1.LabelSelector: validation as ValidateLabelSelector does it, and matching labels."""
from __future__ import annotations

from kubeapi import validation
from kubeapi.status import field_error, forbidden_field, invalid_value, required

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate(sel: object, path: str) -> list[dict]:
    if sel is None:
        return []
    if not isinstance(sel, dict):
        return [invalid_value(path, sel, "must be a label selector object")]
    errors = validation.labels(sel.get("matchLabels"), f"{path}.matchLabels")
    exprs = sel.get("matchExpressions") or []
    if not isinstance(exprs, list):
        return errors + [invalid_value(f"{path}.matchExpressions", exprs, "must be a list")]
    for i, req in enumerate(exprs):
        p = f"{path}.matchExpressions[{i}]"
        if not isinstance(req, dict):
            errors.append(invalid_value(p, req, "must be an object"))
            continue
        op, values = req.get("operator"), req.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                errors.append(required(f"{p}.values", "must be specified when `operator` is "
                                       "'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errors.append(forbidden_field(f"{p}.values", "may not be specified when "
                                              "`operator` is 'Exists' or 'DoesNotExist'"))
        else:
            errors.append(invalid_value(f"{p}.operator", op or "", "not a valid selector "
                                        "operator"))
        errors += validation.qualified_name(req.get("key", ""), f"{p}.key")
        for j, v in enumerate(values if isinstance(values, list) else []):
            errors += [field_error(e["type"], f"{p}.values[{j}]", e["message"])
                       for e in validation.labels({"k": v}, f"{p}.values[{j}]")
                       if "valid label" in e["message"]]
    return errors


def is_empty(sel: object) -> bool:
    return not isinstance(sel, dict) or not (sel.get("matchLabels") or
                                             sel.get("matchExpressions"))


def matches(sel: object, labels: dict | None) -> bool:
    """Whether labels satisfy the selector; an empty selector matches everything (as
    LabelSelectorAsSelector makes it) and a missing one nothing."""
    if sel is None:
        return False
    labels = labels or {}
    for key, value in (sel.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for req in sel.get("matchExpressions") or []:
        key, op, values = req.get("key"), req.get("operator"), req.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def to_string(sel: object) -> str:
    """The selector as labels.Selector.String() writes it: requirements sorted by key,
    `k=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`; "" for none."""
    if not isinstance(sel, dict):
        return ""
    parts = [(k, f"{k}={v}") for k, v in (sel.get("matchLabels") or {}).items()]
    for req in sel.get("matchExpressions") or []:
        key, op = req.get("key", ""), req.get("operator")
        values = ",".join(sorted(req.get("values") or []))
        text = {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})",
                "Exists": key, "DoesNotExist": f"!{key}"}.get(op, key)
        parts.append((key, text))
    return ",".join(text for _, text in sorted(parts, key=lambda p: p[0]))


def format_selector(sel: object) -> str:
    """metav1.FormatLabelSelector: the string, or <none>."""
    return to_string(sel) or "<none>"
