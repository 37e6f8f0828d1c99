"""The protobuf bodies of the review kinds, as kubectl's typed clients send them (`kubectl auth
can-i`, `can-i --list`, `whoami`), decoded into their JSON form. Field numbers are those of
k8s.io/api/authorization/v1 and authentication/v1 generated.proto."""
from __future__ import annotations

from typing import Callable

from kubeapi.protobuf import MAGIC, fields, unwrap

_RESOURCE_ATTRIBUTES = {1: "namespace", 2: "verb", 3: "group", 4: "version", 5: "resource",
                        6: "subresource", 7: "name"}
_NON_RESOURCE_ATTRIBUTES = {1: "path", 2: "verb"}


def _text(value) -> str:
    return bytes(value).decode()


def _strings(data: bytes, names: dict[int, str]) -> dict:
    return {names[n]: _text(v) for n, v in fields(data) if n in names}


def _meta(data: bytes) -> dict:
    return _strings(data, {1: "name", 2: "generateName", 3: "namespace"})


def _access_spec(data: bytes) -> dict:
    spec: dict = {}
    for number, value in fields(data):
        if number == 1:
            spec["resourceAttributes"] = _strings(value, _RESOURCE_ATTRIBUTES)
        elif number == 2:
            spec["nonResourceAttributes"] = _strings(value, _NON_RESOURCE_ATTRIBUTES)
        elif number in (3, 6):
            spec["user" if number == 3 else "uid"] = _text(value)
        elif number == 4:
            spec.setdefault("groups", []).append(_text(value))
    return spec


def _rules_spec(data: bytes) -> dict:
    return _strings(data, {1: "namespace"})


def _token_spec(data: bytes) -> dict:
    spec: dict = {}
    for number, value in fields(data):
        if number == 1:
            spec["token"] = _text(value)
        elif number == 2:
            spec.setdefault("audiences", []).append(_text(value))
    return spec


def _token_request_spec(data: bytes) -> dict:
    """TokenRequestSpec (`kubectl create token`): audiences 1, boundObjectRef 3,
    expirationSeconds 4."""
    spec: dict = {}
    for number, value in fields(data):
        if number == 1:
            spec.setdefault("audiences", []).append(_text(value))
        elif number == 3:
            spec["boundObjectRef"] = _strings(value, {1: "kind", 2: "apiVersion", 3: "name",
                                                      4: "uid"})
        elif number == 4 and isinstance(value, int):
            spec["expirationSeconds"] = value
    return spec


_SPECS: dict[tuple[str, str], Callable[[bytes], dict] | None] = {
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): _access_spec,
    ("authorization.k8s.io/v1", "SubjectAccessReview"): _access_spec,
    ("authorization.k8s.io/v1", "LocalSubjectAccessReview"): _access_spec,
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview"): _rules_spec,
    ("authentication.k8s.io/v1", "TokenReview"): _token_spec,
    ("authentication.k8s.io/v1", "SelfSubjectReview"): None,
    ("authentication.k8s.io/v1", "TokenRequest"): _token_request_spec,  # metadata and status only
}


def decode(body: bytes) -> dict | None:
    """The review as a JSON-style dict; None when the body is no review kind."""
    if not body.startswith(MAGIC):
        return None
    api_version, kind, raw = unwrap(body)
    if (api_version, kind) not in _SPECS:
        return None
    obj: dict = {"apiVersion": api_version, "kind": kind}
    spec_decoder = _SPECS[(api_version, kind)]
    for number, value in fields(raw):
        if number == 1:
            obj["metadata"] = _meta(value)
        elif number == 2 and spec_decoder is not None:
            obj["spec"] = spec_decoder(value)
    return obj
