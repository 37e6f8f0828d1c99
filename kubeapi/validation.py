"""Validation shared by every resource: names, labels, annotations, object metadata."""
from __future__ import annotations

import re

from kubeapi.status import field_error, invalid_value, required

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_C_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_IANA_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$")

DNS1123_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
                     "or '-', and must start and end with an alphanumeric character")
DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                         "characters, '-' or '.', and must start and end with an alphanumeric "
                         "character")


def dns1123_label(value: str, field: str) -> list[dict]:
    if not isinstance(value, str) or not _DNS1123_LABEL.match(value):
        return [invalid_value(field, value, DNS1123_LABEL_MSG)]
    if len(value) > 63:
        return [invalid_value(field, value, "must be no more than 63 characters")]
    return []


def dns1123_subdomain(value: str, field: str) -> list[dict]:
    if not isinstance(value, str) or not _DNS1123_SUBDOMAIN.match(value):
        return [invalid_value(field, value, DNS1123_SUBDOMAIN_MSG)]
    if len(value) > 253:
        return [invalid_value(field, value, "must be no more than 253 characters")]
    return []


def qualified_name(value: str, field: str) -> list[dict]:
    """A label or annotation key: an optional DNS subdomain prefix and a '/'-separated name."""
    if not isinstance(value, str) or not value:
        return [invalid_value(field, value, "name part must be non-empty")]
    prefix, _, name = value.rpartition("/")
    errors = []
    if prefix and not _DNS1123_SUBDOMAIN.match(prefix):
        errors.append(invalid_value(field, value, "prefix part " + DNS1123_SUBDOMAIN_MSG))
    if not _QUALIFIED_NAME.match(name) or len(name) > 63:
        errors.append(invalid_value(
            field, value, "name part must consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character, at most 63 characters"))
    return errors


def labels(value: object, field: str) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, dict):
        return [invalid_value(field, value, "must be a map of string keys to string values")]
    errors = []
    for k, v in value.items():
        errors += qualified_name(k, f"{field}")
        if not isinstance(v, str) or not _LABEL_VALUE.match(v) or len(v) > 63:
            errors.append(invalid_value(f"{field}", v, "a valid label must be an empty string "
                                        "or consist of alphanumeric characters, '-', '_' or '.', "
                                        "and must start and end with an alphanumeric character"))
    return errors


def string_map(value: object, field: str) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        return [invalid_value(field, "", "must be a map of string keys to string values")]
    return []


def c_identifier(value: str) -> bool:
    return isinstance(value, str) and bool(_C_IDENTIFIER.match(value))


def config_key(value: str, field: str) -> list[dict]:
    if not isinstance(value, str) or not _CONFIG_KEY.match(value) or len(value) > 253:
        return [invalid_value(field, value, "a valid config key must consist of alphanumeric "
                              "characters, '-', '_' or '.'")]
    return []


def iana_svc_name(value: str) -> bool:
    return isinstance(value, str) and bool(_IANA_SVC_NAME.match(value)) and \
        any(c.isalpha() for c in value) and "--" not in value


def object_meta(obj: dict, namespaced: bool, name_check=dns1123_subdomain) -> list[dict]:
    """metadata.name/namespace/labels/annotations as ValidateObjectMeta checks them."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return [required("metadata")]
    errors = []
    name = meta.get("name")
    if not name:
        errors.append(field_error("FieldValueRequired", "metadata.name",
                                  "Required value: name or generateName is required"))
    else:
        errors += name_check(name, "metadata.name")
    ns = meta.get("namespace")
    if namespaced:
        if not ns:
            errors.append(required("metadata.namespace"))
        else:
            errors += dns1123_label(ns, "metadata.namespace")
    elif ns:
        errors.append(field_error("FieldValueForbidden", "metadata.namespace",
                                  "Forbidden: not allowed on this type"))
    errors += labels(meta.get("labels"), "metadata.labels")
    errors += string_map(meta.get("annotations"), "metadata.annotations")
    for k in (meta.get("annotations") or {}):
        errors += qualified_name(k, "metadata.annotations")
    if len(str(meta.get("annotations") or "")) > 256 * 1024:
        errors.append(field_error("FieldValueTooLong", "metadata.annotations",
                                  "Too long: must have at most 262144 bytes"))
    fin = meta.get("finalizers")
    if fin is not None and (not isinstance(fin, list) or
                            not all(isinstance(f, str) for f in fin)):
        errors.append(invalid_value("metadata.finalizers", fin, "must be a list of strings"))
    return errors
