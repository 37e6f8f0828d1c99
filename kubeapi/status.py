"""Kubernetes Status errors: the `kind: Status` bodies (reason, code, details) that the API
server sends and the REST client raises again, and the field causes of a 422 Invalid."""
from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A `kind: Status` failure with its HTTP code: raised by the API server to answer with it,
    and by the REST client for an answer other than 2xx."""

    def __init__(self, code: int, reason: str, message: str, *, kind: str = "", name: str = "",
                 group: str = "", causes: list[dict] | None = None, retry_after: int = 0):
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.kind = kind
        self.name = name
        self.group = group
        self.causes = causes or []
        self.retry_after = retry_after

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code,
        }
        details: dict[str, Any] = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = self.causes
        if self.retry_after:
            details["retryAfterSeconds"] = self.retry_after
        if details:
            body["details"] = details
        return body


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, name: str, group: str = "") -> ApiError:
    return ApiError(404, "NotFound", f'{_qualified(resource, group)} "{name}" not found',
                    kind=resource, name=name, group=group)


def already_exists(resource: str, name: str, group: str = "") -> ApiError:
    return ApiError(409, "AlreadyExists", f'{_qualified(resource, group)} "{name}" already exists',
                    kind=resource, name=name, group=group)


def conflict(resource: str, name: str, why: str, group: str = "") -> ApiError:
    return ApiError(409, "Conflict",
                    f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {why}',
                    kind=resource, name=name, group=group)


def invalid(kind: str, name: str, causes: list[dict], group: str = "") -> ApiError:
    """422 Invalid; each cause is {"type", "field", "message"} as built by `field_error`."""
    parts = [f"{c['field']}: {c['message']}" if c.get("field") else c["message"] for c in causes]
    summary = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    return ApiError(422, "Invalid", f'{kind} "{name}" is invalid: {summary}', kind=kind,
                    name=name, group=group,
                    causes=[{"reason": c["type"], "message": c["message"], "field": c["field"]}
                            for c in causes])


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def field_error(kind: str, field: str, message: str) -> dict:
    """One validation cause. kind is the Kubernetes cause type (FieldValueRequired, ...)."""
    return {"type": kind, "field": field, "message": message}


def required(field: str, detail: str = "") -> dict:
    return field_error("FieldValueRequired", field,
                       f"Required value: {detail}" if detail else "Required value")


def invalid_value(field: str, value: Any, detail: str) -> dict:
    shown = f'"{value}"' if isinstance(value, str) else repr(value)
    return field_error("FieldValueInvalid", field, f"Invalid value: {shown}: {detail}")


def not_supported(field: str, value: Any, allowed: list[str]) -> dict:
    choices = ", ".join(f'"{a}"' for a in allowed)
    return field_error("FieldValueNotSupported", field,
                       f'Unsupported value: "{value}": supported values: {choices}')


def duplicate(field: str, value: Any) -> dict:
    return field_error("FieldValueDuplicate", field, f'Duplicate value: "{value}"')


def forbidden_field(field: str, detail: str) -> dict:
    return field_error("FieldValueForbidden", field, f"Forbidden: {detail}")
