"""The bridge between client-side and server-side apply, as kube-apiserver keeps it for the
manager "kubectl": conflicts on fields that the kubectl.kubernetes.io/last-applied-configuration
annotation shows kubectl itself set (and that still hold that value) do not stop an apply,
and an apply keeps that annotation, where the object has one, equal to what it applied."""
from __future__ import annotations

import copy
import json

from . import managed_fields as mf
from .typed_schema import Type

KUBECTL = "kubectl"
ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"


def _annotation(obj: dict | None) -> str:
    annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
    value = annotations.get(ANNOTATION) if isinstance(annotations, dict) else None
    return value if isinstance(value, str) else ""


def allowed_conflicts(live: dict | None, t: Type, api_version: str) -> mf.FieldSet:
    """The fields of the client-side apply annotation whose value the live object still has;
    empty without a readable annotation of the object's apiVersion."""
    try:
        last = json.loads(_annotation(live))
    except ValueError:
        return set()
    if not isinstance(last, dict) or last.get("apiVersion") != api_version:
        return set()
    diff = mf.compare(last, live, t)
    return mf.from_object(last, t) - diff.modified - diff.added - diff.removed


def sync_annotation(result: dict, config: dict) -> None:
    """Sets result's annotation, where it has one, to the applied configuration (less the
    annotation itself), encoded as kube-apiserver encodes it."""
    if not _annotation(result):
        return
    applied = copy.deepcopy(config)
    meta = applied.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("annotations"), dict):
        meta["annotations"].pop(ANNOTATION, None)
        if not meta["annotations"]:
            del meta["annotations"]
    result["metadata"]["annotations"][ANNOTATION] = mf.go_json(applied, sort_keys=True) + "\n"
