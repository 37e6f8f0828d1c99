"""Go's %#v renderings of the values that kube-apiserver puts into field errors
(`Invalid value: map[string]string{"app":"web"}: ...`), so that our messages read as its."""
from __future__ import annotations

import json


def go_quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def string_map(value: object) -> str:
    """map[string]string{"a":"b", "c":"d"} with sorted keys, as fmt prints maps."""
    if not isinstance(value, dict) or not value:
        return "map[string]string(nil)" if not value else str(value)
    items = ", ".join(f"{go_quote(str(k))}:{go_quote(str(v))}" for k, v in sorted(value.items()))
    return "map[string]string{" + items + "}"


def _string_slice(values: object) -> str:
    if not isinstance(values, list) or not values:
        return "[]string(nil)"
    return "[]string{" + ", ".join(go_quote(str(v)) for v in values) + "}"


def label_selector(sel: object) -> str:
    """v1.LabelSelector{MatchLabels:..., MatchExpressions:...}."""
    sel = sel if isinstance(sel, dict) else {}
    exprs = sel.get("matchExpressions") or []
    if exprs:
        rendered = ", ".join(
            "v1.LabelSelectorRequirement{Key:" + go_quote(str(e.get("key", ""))) +
            ", Operator:" + go_quote(str(e.get("operator", ""))) +
            ", Values:" + _string_slice(e.get("values")) + "}"
            for e in exprs if isinstance(e, dict))
        exprs_text = "[]v1.LabelSelectorRequirement{" + rendered + "}"
    else:
        exprs_text = "[]v1.LabelSelectorRequirement(nil)"
    return ("v1.LabelSelector{MatchLabels:" + string_map(sel.get("matchLabels")) +
            ", MatchExpressions:" + exprs_text + "}")


def int_or_string(value: object) -> str:
    """intstr.IntOrString{Type:1, IntVal:0, StrVal:"30"}."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f'intstr.IntOrString{{Type:0, IntVal:{value}, StrVal:""}}'
    return f"intstr.IntOrString{{Type:1, IntVal:0, StrVal:{go_quote(str(value))}}}"


def scalar(value: object) -> str:
    """Numbers and booleans as %v, strings quoted, as field.Invalid prints simple types."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return go_quote(value)
    if value is None:
        return "null"
    return str(value)
