"""ConfigMaps and Secrets: key validation, Secret stringData folding, the `immutable` flag."""
from __future__ import annotations

import base64
import binascii

from kubeapi.status import field_error, invalid_value
from kubeapi import validation

from .strategy import Strategy

MAX_DATA_BYTES = 1024 * 1024


def _immutable_errors(new: dict, old: dict, fields: tuple[str, ...]) -> list[dict]:
    if not old.get("immutable"):
        return []
    errors = []
    if not new.get("immutable"):
        errors.append(field_error("FieldValueForbidden", "immutable",
                                  "Forbidden: field is immutable when `immutable` is set"))
    for f in fields:
        if new.get(f) != old.get(f):
            errors.append(field_error("FieldValueForbidden", f,
                                      "Forbidden: field is immutable when `immutable` is set"))
    return errors


class ConfigMapStrategy(Strategy):
    kind = "ConfigMap"

    def validate(self, obj: dict) -> list[dict]:
        errors = []
        data, binary = obj.get("data") or {}, obj.get("binaryData") or {}
        size = 0
        for key, value in data.items():
            errors += validation.config_key(key, f"data[{key}]")
            if not isinstance(value, str):
                errors.append(invalid_value(f"data[{key}]", value, "must be a string"))
            size += len(str(value))
        for key, value in binary.items():
            errors += validation.config_key(key, f"binaryData[{key}]")
            if key in data:
                errors.append(invalid_value(f"binaryData[{key}]", key,
                                            "duplicate of key present in data"))
            size += len(str(value)) * 3 // 4
        if size > MAX_DATA_BYTES:
            errors.append(field_error("FieldValueTooLong", "data",
                                      f"Too long: must have at most {MAX_DATA_BYTES} bytes"))
        return errors

    def validate_update(self, new: dict, old: dict) -> list[dict]:
        return self.validate(new) + _immutable_errors(new, old, ("data", "binaryData"))


class SecretStrategy(Strategy):
    kind = "Secret"
    field_labels = frozenset({"metadata.name", "metadata.namespace", "type"})

    def default(self, obj: dict) -> None:
        if not obj.get("type"):
            obj["type"] = "Opaque"
        # stringData is write-only: it is merged into data and never stored.
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict):
            data = obj.setdefault("data", {}) or {}
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()
            obj["data"] = data

    def validate(self, obj: dict) -> list[dict]:
        errors = []
        size = 0
        for key, value in (obj.get("data") or {}).items():
            errors += validation.config_key(key, f"data[{key}]")
            try:
                size += len(base64.b64decode(value, validate=True))
            except (binascii.Error, TypeError, ValueError):
                errors.append(invalid_value(f"data[{key}]", "<secret contents redacted>",
                                            "illegal base64 data"))
        if size > MAX_DATA_BYTES:
            errors.append(field_error("FieldValueTooLong", "data",
                                      f"Too long: must have at most {MAX_DATA_BYTES} bytes"))
        return errors

    def validate_update(self, new: dict, old: dict) -> list[dict]:
        errors = self.validate(new) + _immutable_errors(new, old, ("data",))
        if new.get("type") != old.get("type"):
            errors.append(field_error("FieldValueInvalid", "type",
                                      f'Invalid value: "{new.get("type")}": field is immutable'))
        return errors

    def fields(self, obj: dict) -> dict[str, str]:
        return {**super().fields(obj), "type": obj.get("type", "")}
