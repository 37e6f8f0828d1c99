"""/openapi/v2 in the protobuf form that client-go asks for (gnostic's openapi_v2.Document,
Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf). kubectl reads it when the
v3 documents do not settle a kind: the create-only review kinds have no PATCH operation there,
so their fieldValidation support and client-side schema are looked up in v2."""
from __future__ import annotations

import json

from kubeapi.protobuf import length_delimited

# Asked for as ...spec.v2@v1.0+protobuf; answered, as kube-apiserver does, in the form Go's
# mime.ParseMediaType reads (an "@" in the subtype is refused).
ACCEPT_PREFIX = "application/com.github.proto-openapi.spec.v2"
MEDIA_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"

# Schema's fields in gnostic's OpenAPIv2.proto.
_REF, _FORMAT, _TITLE, _DESCRIPTION = 1, 2, 3, 4
_REQUIRED, _ENUM, _ADDITIONAL, _TYPE, _ITEMS, _ALL_OF, _PROPERTIES = 19, 20, 21, 22, 23, 24, 25
_VENDOR_EXTENSION = 31


def _string(number: int, text: str) -> bytes:
    return length_delimited(number, text.encode())


def _any(number: int, value: object) -> bytes:
    """gnostic's Any: the value as YAML text, and JSON is YAML."""
    return length_delimited(number, _string(2, json.dumps(value)))


def _named(number: int, name: str, value: bytes) -> bytes:
    return length_delimited(number, _string(1, name) + length_delimited(2, value))


def schema(s: dict) -> bytes:
    """One JSON schema (refs already pointing at #/definitions) as a gnostic Schema."""
    out = []
    for key, value in s.items():
        if key == "$ref":
            out.append(_string(_REF, value))
        elif key == "format":
            out.append(_string(_FORMAT, value))
        elif key == "title":
            out.append(_string(_TITLE, value))
        elif key == "description":
            out.append(_string(_DESCRIPTION, value))
        elif key == "required":
            out.extend(_string(_REQUIRED, name) for name in value)
        elif key == "enum":
            out.extend(_any(_ENUM, item) for item in value)
        elif key == "additionalProperties":
            item = length_delimited(1, schema(value)) if isinstance(value, dict) else \
                bytes([2 << 3, int(bool(value))])
            out.append(length_delimited(_ADDITIONAL, item))
        elif key == "type":
            types = value if isinstance(value, list) else [value]
            out.append(length_delimited(_TYPE, b"".join(_string(1, t) for t in types)))
        elif key == "items":
            out.append(length_delimited(_ITEMS, length_delimited(1, schema(value))))
        elif key == "allOf":
            out.extend(length_delimited(_ALL_OF, schema(part)) for part in value)
        elif key == "properties":
            out.append(length_delimited(_PROPERTIES, b"".join(
                _named(1, name, schema(prop)) for name, prop in value.items())))
        elif key.startswith("x-"):
            out.append(length_delimited(_VENDOR_EXTENSION, _string(1, key) + _any(2, value)))
        else:
            # A keyword schemas.json does not use: refuse rather than drop it unseen.
            raise ValueError(f"openapi v2 protobuf: schema keyword {key!r} is not encoded")
    return b"".join(out)


def document(title: str, version: str, definitions: dict[str, dict]) -> bytes:
    """A Document with no paths (kubectl looks operations up in v3) and every definition."""
    info = _string(1, title) + _string(2, version)
    named = b"".join(_named(1, name, schema(s)) for name, s in definitions.items())
    return (_string(1, "2.0") + length_delimited(2, info) + length_delimited(8, b"") +
            length_delimited(9, named))
