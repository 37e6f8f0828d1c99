"""core/v1 Events, with the involvedObject.* field selectors that `kubectl describe` uses."""
from __future__ import annotations

import re

from kubeapi.status import invalid_value, required

from .strategy import Strategy

_NAME_PART = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_NAME_PART_MSG = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must "
                  "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  "
                  "or '123-abc', regex used for validation is "
                  "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
_PREFIX_MSG = ("prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
               "characters, '-' or '.', and must start and end with an alphanumeric character "
               "(e.g. 'example.com', regex used for validation is "
               "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
# kube's limits on an events-API Event's strings (field: characters).
_LIMITS = (("reportingInstance", 128), ("action", 128), ("reason", 128), ("message", 1024))


def _qualified_name(value: str, field: str) -> list[dict]:
    """kube's IsQualifiedName, its messages as they are (they differ from a label key's)."""
    prefix, slash, name = value.partition("/")
    errors = []
    if slash and "/" in name:
        return [invalid_value(field, value, "a valid label key must consist of alphanumeric "
                              "characters, '-', '_' or '.', and must start and end with an "
                              "alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
                              "'123-abc', regex used for validation is "
                              "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS "
                              "subdomain prefix and '/' (e.g. 'example.com/MyName')")]
    if not slash:
        name = prefix
    elif not prefix:
        errors.append(invalid_value(field, value, "prefix part must be non-empty"))
    elif not _SUBDOMAIN.fullmatch(prefix):
        errors.append(invalid_value(field, value, _PREFIX_MSG))
    if not name:
        errors.append(invalid_value(field, value, "name part must be non-empty"))
    elif len(name) > 63:
        errors.append(invalid_value(field, value, "name part must be no more than 63 characters"))
    if not _NAME_PART.fullmatch(name):
        errors.append(invalid_value(field, value, _NAME_PART_MSG))
    return errors


def _text(obj: dict, field: str) -> str:
    value = obj.get(field)
    return value if isinstance(value, str) else ""


def _reported(obj: dict) -> list[dict]:
    """What an Event with an eventTime must carry: who reported it, from where, and what."""
    errors = []
    component = _text(obj, "reportingComponent")
    if not component:
        errors.append(required("reportingComponent"))
    errors += _qualified_name(component, "reportingComponent")
    for field, limit in _LIMITS:
        value = _text(obj, field)
        if not value and field != "message":
            errors.append(required(field))
        if len(value) > limit:
            errors.append(invalid_value(field, "", f"can have at most {limit} characters"))
    return errors


class EventStrategy(Strategy):
    kind = "Event"
    field_labels = frozenset({
        "metadata.name", "metadata.namespace", "involvedObject.kind",
        "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
        "involvedObject.apiVersion", "involvedObject.resourceVersion",
        "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"})

    def name_errors(self, name: str, field: str) -> list[dict]:
        """Only what a URL's path segment cannot hold: kube's core/v1 Events keep their old
        names (an involved object's name, upper case or '_' included)."""
        if name in (".", ".."):
            return [invalid_value(field, name, f"may not be '{name}'")]
        return [invalid_value(field, name, f"may not contain '{c}'") for c in "/%" if c in name]

    def validate(self, obj: dict) -> list[dict]:
        """kube's checks of a core/v1 Event: its namespace against the involved object's, and
        for an Event of the events API's shape (an eventTime) what that shape requires."""
        involved = obj.get("involvedObject")
        involved = involved if isinstance(involved, dict) else {}
        ns = obj["metadata"].get("namespace") or ""
        involved_ns = involved.get("namespace") or ""
        if obj.get("eventTime"):
            # An events-API Event may name an object of another namespace; one without a
            # namespace (a Node's) belongs to default or kube-system.
            mismatch = not involved_ns and ns not in ("default", "kube-system")
        else:
            mismatch = involved_ns != ns if involved_ns else ns not in ("", "default")
        errors = [invalid_value("involvedObject.namespace", involved_ns,
                                "does not match event.namespace")] if mismatch else []
        if obj.get("eventTime"):
            errors += _reported(obj)
        return errors

    def fields(self, obj: dict) -> dict[str, str]:
        involved = obj.get("involvedObject") or {}
        out = super().fields(obj)
        for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion",
                  "fieldPath"):
            out["involvedObject." + f] = str(involved.get(f, ""))
        out["reason"] = obj.get("reason", "")
        out["reportingComponent"] = obj.get("reportingComponent", "")
        out["source"] = (obj.get("source") or {}).get("component", "")
        out["type"] = obj.get("type", "")
        return out
