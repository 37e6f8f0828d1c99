"""Decoding of the Kubernetes protobuf request bodies that kubectl's typed clients send
(`kubectl create namespace|configmap|secret`): the "k8s\\0" envelope (runtime.Unknown) and the
fields of Namespace, ConfigMap, Secret and ObjectMeta that those commands set. Other kinds get
415, and client-go then falls back to JSON where it can. Responses are always JSON. The wire
reader and the writer of a string field also serve the kubelet's gRPC health probe."""
from __future__ import annotations

import base64

MAGIC = b"k8s\x00"


class ProtobufError(ValueError):
    pass


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ProtobufError("truncated varint")
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def _encode_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def length_delimited(number: int, data: bytes) -> bytes:
    """One field of wire type 2 (string, bytes, message): key, length, data."""
    return _encode_varint(number << 3 | 2) + _encode_varint(len(data)) + data


def fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """A message's fields in order: (number, an int for varints, else the raw bytes)."""
    out, i = [], 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            length, i = _varint(data, i)
            if i + length > len(data):
                raise ProtobufError("truncated field")
            value, i = data[i:i + length], i + length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, i = data[i:i + size], i + size
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        out.append((number, value))
    return out


def _text(value) -> str:
    return bytes(value).decode()


def _map(value: bytes, binary: bool = False) -> tuple[str, str]:
    entry = dict(fields(value))
    raw = entry.get(2, b"")
    return _text(entry.get(1, b"")), (base64.b64encode(raw).decode() if binary else _text(raw))


def object_meta(data: bytes) -> dict:
    meta: dict = {}
    names = {1: "name", 2: "generateName", 3: "namespace", 5: "uid", 6: "resourceVersion"}
    for number, value in fields(data):
        if number in names:
            # Go's encoder writes every string, even empty; its JSON omits them (omitempty)
            if value:
                meta[names[number]] = _text(value)
        elif number in (11, 12):
            key, val = _map(value)
            meta.setdefault("labels" if number == 11 else "annotations", {})[key] = val
        elif number == 14:
            meta.setdefault("finalizers", []).append(_text(value))
    return meta


def _namespace(message: list) -> dict:
    obj: dict = {}
    for number, value in message:
        if number == 1:
            obj["metadata"] = object_meta(value)
        elif number == 2:
            finalizers = [_text(v) for n, v in fields(value) if n == 1]
            obj["spec"] = {"finalizers": finalizers} if finalizers else {}
    return obj


def _config_map(message: list) -> dict:
    obj: dict = {}
    for number, value in message:
        if number == 1:
            obj["metadata"] = object_meta(value)
        elif number in (2, 3):
            key, val = _map(value, binary=number == 3)
            obj.setdefault("data" if number == 2 else "binaryData", {})[key] = val
        elif number == 4:
            obj["immutable"] = bool(value)
    return obj


def _secret(message: list) -> dict:
    obj: dict = {}
    for number, value in message:
        if number == 1:
            obj["metadata"] = object_meta(value)
        elif number in (2, 4):
            key, val = _map(value, binary=number == 2)
            obj.setdefault("data" if number == 2 else "stringData", {})[key] = val
        elif number == 3:
            obj["type"] = _text(value)
        elif number == 5:
            obj["immutable"] = bool(value)
    return obj


def _service_account(message: list) -> dict:
    """`kubectl create serviceaccount`: metadata 1, secrets 2 (ObjectReference), imagePullSecrets
    3 (LocalObjectReference), automountServiceAccountToken 4."""
    obj: dict = {}
    reference = {1: "kind", 2: "namespace", 3: "name", 4: "uid", 5: "apiVersion",
                 6: "resourceVersion", 7: "fieldPath"}
    for number, value in message:
        if number == 1:
            obj["metadata"] = object_meta(value)
        elif number in (2, 3):
            ref = {reference[n]: _text(v) for n, v in fields(value) if n in reference and v}
            obj.setdefault("secrets" if number == 2 else "imagePullSecrets", []).append(ref)
        elif number == 4:
            obj["automountServiceAccountToken"] = bool(value)
    return obj


_KINDS = {("v1", "Namespace"): _namespace, ("v1", "ConfigMap"): _config_map,
          ("v1", "Secret"): _secret, ("v1", "ServiceAccount"): _service_account}


def unwrap(body: bytes) -> tuple[str, str, bytes]:
    """The apiVersion, the kind and the encoded object of a "k8s\\0" envelope."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf envelope")
    unknown = dict(fields(body[len(MAGIC):]))
    type_meta = dict(fields(unknown.get(1, b"")))
    return _text(type_meta.get(1, b"")), _text(type_meta.get(2, b"")), unknown.get(2, b"")


def decode(body: bytes) -> dict | None:
    """The object as JSON-style dict, or None when its kind is not one we decode."""
    api_version, kind, raw = unwrap(body)
    decoder = _KINDS.get((api_version, kind))
    if decoder is None:
        return None
    return {"apiVersion": api_version, "kind": kind, **decoder(fields(raw))}
