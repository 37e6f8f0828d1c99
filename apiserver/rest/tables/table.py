"""Server-side Table output (Accept: application/json;as=Table;g=meta.k8s.io;v=v1): the columns
kube-apiserver prints for each resource, with priority-1 columns shown by `kubectl get -o wide`."""
from __future__ import annotations

from .apps import WORKLOAD_TABLES
from .columns import AGE, NAME, created, simple
from .core import CORE_TABLES
from .storage import STORAGE_TABLES


def _row_object(obj: dict, include: str) -> dict | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata") or {}}


def to_table(resource: str, objects: list[dict], *, resource_version: str = "",
             continue_token: str = "", include_object: str = "PartialObjectMetadata",
             headers: bool = True) -> dict:
    columns, row = CORE_TABLES.get(resource) or WORKLOAD_TABLES.get(resource) or \
        STORAGE_TABLES.get(resource) or ([NAME, AGE], simple(created))
    rows = []
    for obj in objects:
        entry: dict = {"cells": row(obj)}
        included = _row_object(obj, include_object)
        if included is not None:
            entry["object"] = included
        rows.append(entry)
    meta: dict = {}
    if resource_version:
        meta["resourceVersion"] = resource_version
    if continue_token:
        meta["continue"] = continue_token
    table = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "rows": rows}
    if headers:
        table["columnDefinitions"] = columns
    return table
