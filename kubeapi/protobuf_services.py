"""The protobuf body of a v1 Service, as `kubectl create service` sends it, decoded into its
JSON form. Field numbers are those of k8s.io/api/core/v1 generated.proto; Go's encoder writes
empty strings and zero numbers that its JSON leaves out (omitempty), so they are dropped here."""
from __future__ import annotations

from kubeapi.protobuf import object_meta, fields, unwrap

_SPEC_STRINGS = {3: "clusterIP", 4: "type", 7: "sessionAffinity", 8: "loadBalancerIP",
                 10: "externalName", 11: "externalTrafficPolicy", 17: "ipFamilyPolicy",
                 21: "loadBalancerClass", 22: "internalTrafficPolicy",
                 23: "trafficDistribution"}
_SPEC_LISTS = {5: "externalIPs", 9: "loadBalancerSourceRanges", 18: "clusterIPs",
               19: "ipFamilies"}
_PORT_STRINGS = {1: "name", 2: "protocol", 6: "appProtocol"}
_PORT_NUMBERS = {3: "port", 5: "nodePort"}


def _text(value) -> str:
    return bytes(value).decode()


def _int_or_string(data: bytes) -> int | str:
    parts = dict(fields(data))
    if parts.get(1, 0) == 1:
        return _text(parts.get(3, b""))
    return parts.get(2, 0)


def _port(data: bytes) -> dict:
    port: dict = {}
    for number, value in fields(data):
        if number in _PORT_STRINGS and value:
            port[_PORT_STRINGS[number]] = _text(value)
        elif number in _PORT_NUMBERS and value:
            port[_PORT_NUMBERS[number]] = value
        elif number == 4:
            target = _int_or_string(value)
            if target:
                port["targetPort"] = target
    return port


def _spec(data: bytes) -> dict:
    spec: dict = {}
    for number, value in fields(data):
        if number == 1:
            spec.setdefault("ports", []).append(_port(value))
        elif number == 2:
            entry = dict(fields(value))
            spec.setdefault("selector", {})[_text(entry.get(1, b""))] = \
                _text(entry.get(2, b""))
        elif number in _SPEC_STRINGS and value:
            spec[_SPEC_STRINGS[number]] = _text(value)
        elif number in _SPEC_LISTS:
            spec.setdefault(_SPEC_LISTS[number], []).append(_text(value))
        elif number == 12 and value:
            spec["healthCheckNodePort"] = value
        elif number == 13 and value:
            spec["publishNotReadyAddresses"] = True
        elif number == 14:
            client_ip = dict(fields(dict(fields(value)).get(1, b"")))
            spec["sessionAffinityConfig"] = {"clientIP": {
                k: v for k, v in (("timeoutSeconds", client_ip.get(1)),) if v is not None}}
        elif number == 20:
            spec["allocateLoadBalancerNodePorts"] = bool(value)
    return spec


def decode(body: bytes) -> dict | None:
    """A Service as a JSON-style dict; None for any other kind."""
    api_version, kind, raw = unwrap(body)
    if (api_version, kind) != ("v1", "Service"):
        return None
    obj: dict = {"apiVersion": "v1", "kind": "Service"}
    for number, value in fields(raw):
        if number == 1:
            obj["metadata"] = object_meta(value)
        elif number == 2:
            obj["spec"] = _spec(value)
    return obj
