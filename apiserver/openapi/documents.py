"""/openapi/v3 (one document per group/version) and /openapi/v2, built from the type schemas in
schemas.json. kubectl needs: schemas tagged x-kubernetes-group-version-kind (explain,
apply's patch strategy), and PATCH operations that list the fieldValidation parameter (then
create/apply validate on the server instead of fetching v2 protobuf)."""
from __future__ import annotations

import functools
import hashlib
import json
import os

from ..auth.reviews import REVIEWS
from ..resources import GROUP_VERSIONS, RESOURCES
from .v2_protobuf import ACCEPT_PREFIX as V2_PROTOBUF_ASKED  # noqa: F401 - for rest/api
from .v2_protobuf import MEDIA_TYPE as V2_PROTOBUF  # noqa: F401 - for rest/api
from .v2_protobuf import document as v2_protobuf_document

_QUERY_PARAMS = ("dryRun", "fieldManager", "fieldValidation", "pretty")


@functools.lru_cache(maxsize=1)
def _schemas() -> dict[str, dict]:
    with open(os.path.join(os.path.dirname(__file__), "schemas.json")) as f:
        return json.load(f)


def _reachable(names: list[str], schemas: dict[str, dict]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in out or name not in schemas:
            continue
        out[name] = schemas[name]
        text = json.dumps(schemas[name])
        start = 0
        while (i := text.find('"#/components/schemas/', start)) >= 0:
            end = text.index('"', i + 1)
            todo.append(text[i + 22:end])
            start = end
    return out


def _definition(group: str, kind: str) -> str:
    return f"io.k8s.api.{group.split('.')[0] if group else 'core'}.v1.{kind}"


def _operation(op_id: str, gvk: dict, ref: str, verb: str) -> dict:
    params = [{"name": p, "in": "query", "schema": {"type": "string"}} for p in _QUERY_PARAMS]
    return {"operationId": op_id, "parameters": params,
            "x-kubernetes-action": verb, "x-kubernetes-group-version-kind": gvk,
            "responses": {"200": {"description": "OK", "content": {
                "application/json": {"schema": {"$ref": ref}}}}}}


def v3_document(group: str, version: str) -> dict | None:
    if (group, version) not in GROUP_VERSIONS:
        return None
    schemas = _schemas()
    paths: dict[str, dict] = {}
    roots = []
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    for r in RESOURCES:
        if (r.group, r.version) != (group, version):
            continue
        definition = _definition(group, r.kind)
        roots.append(definition)
        ref = "#/components/schemas/" + definition
        gvk = {"group": group, "version": version, "kind": r.kind}
        scope = base + ("/namespaces/{namespace}" if r.namespaced else "")
        paths[f"{scope}/{r.plural}"] = {
            "get": _operation(f"list{r.kind}", gvk, ref, "list"),
            "post": _operation(f"create{r.kind}", gvk, ref, "post")}
        paths[f"{scope}/{r.plural}/{{name}}"] = {
            verb: _operation(f"{verb}{r.kind}", gvk, ref, action)
            for verb, action in (("get", "get"), ("put", "put"), ("patch", "patch"),
                                 ("delete", "delete"))}
        for sub in r.subresources:
            if sub in ("status", "ephemeralcontainers"):
                paths[f"{scope}/{r.plural}/{{name}}/{sub}"] = {
                    verb: _operation(f"{verb}{r.kind}{sub.capitalize()}", gvk, ref, verb)
                    for verb in ("get", "put", "patch")}
    for review in REVIEWS:  # create-only
        if review.group != group:
            continue
        definition = _definition(group, review.kind)
        roots.append(definition)
        gvk = {"group": group, "version": version, "kind": review.kind}
        scope = base + ("/namespaces/{namespace}" if review.namespaced else "")
        paths[f"{scope}/{review.plural}"] = {"post": _operation(
            f"create{review.kind}", gvk, "#/components/schemas/" + definition, "post")}
    roots.append("io.k8s.api.core.v1.Binding")
    return {"openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "v1.37.0-pyapiserver"},
            "paths": paths, "components": {"schemas": _reachable(roots, schemas)}}


@functools.lru_cache(maxsize=None)
def v3_bytes(group: str, version: str) -> bytes | None:
    doc = v3_document(group, version)
    return json.dumps(doc, separators=(",", ":")).encode() if doc else None


def v3_root() -> dict:
    paths = {}
    for group, version in GROUP_VERSIONS:
        rel = f"apis/{group}/{version}" if group else f"api/{version}"
        digest = hashlib.sha512(v3_bytes(group, version)).hexdigest()[:64].upper()
        paths[rel] = {"serverRelativeURL": f"/openapi/v3/{rel}?hash={digest}"}
    return {"paths": paths}


def _v2_text() -> str:
    return json.dumps(_schemas(), separators=(",", ":")).replace(
        "#/components/schemas/", "#/definitions/")


@functools.lru_cache(maxsize=1)
def v2_bytes() -> bytes:
    """Swagger 2.0 with every definition; refs point at #/definitions."""
    return (b'{"swagger":"2.0","info":{"title":"Kubernetes","version":"v1.37.0-pyapiserver"},'
            b'"paths":{},"definitions":' + _v2_text().encode() + b"}")


@functools.lru_cache(maxsize=1)
def v2_protobuf() -> bytes:
    """The same document in the protobuf form client-go asks for."""
    return v2_protobuf_document("Kubernetes", "v1.37.0-pyapiserver", json.loads(_v2_text()))
