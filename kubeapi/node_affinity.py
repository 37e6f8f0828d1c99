"""Whether a pod's nodeSelector and required node affinity admit a node, as kube's
component-helpers nodeaffinity: the terms of requiredDuringSchedulingIgnoredDuringExecution are
ORed, the requirements of one term ANDed; matchFields knows metadata.name. Shared by the
scheduler and the DaemonSet controller."""
from __future__ import annotations


def _requirement_matches(req: dict, value: str | None) -> bool:
    op, values = req.get("operator"), req.get("values") or []
    if op == "In":
        return value is not None and value in values
    if op == "NotIn":
        return value is None or value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt") and value is not None and values:
        try:
            left, right = int(value), int(values[0])
        except ValueError:
            return False
        return left > right if op == "Gt" else left < right
    return False


def node_affinity_matches(spec: dict, node: dict) -> bool:
    """nodeSelector and requiredDuringSchedulingIgnoredDuringExecution (terms ORed, the
    requirements of a term ANDed; matchFields on metadata.name)."""
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms")
    if not terms:
        return True
    fields = {"metadata.name": node["metadata"]["name"]}
    for term in terms:
        exprs = term.get("matchExpressions") or []
        field_reqs = term.get("matchFields") or []
        if not exprs and not field_reqs:
            continue
        if all(_requirement_matches(r, labels.get(r.get("key", ""))) for r in exprs) and \
                all(_requirement_matches(r, fields.get(r.get("key", ""))) for r in field_reqs):
            return True
    return False
