"""discovery.k8s.io/v1 EndpointSlices: defaults (port protocol and name) and kube's
ValidateEndpointSlice (addressType, addresses of that type, ports, sizes)."""
from __future__ import annotations

import ipaddress

from kubeapi import validation
from kubeapi.status import duplicate, field_error, invalid_value, not_supported, required

from .strategy import Strategy

ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")
PROTOCOLS = ("SCTP", "TCP", "UDP")
MAX_ENDPOINTS = 1000
MAX_ADDRESSES = 100
MAX_PORTS = 20000
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"


def _too_many(field: str, count: int, limit: int) -> dict:
    return field_error("FieldValueTooMany", field,
                       f"Too many: {count}: must have at most {limit} items")


def _address_errors(address: object, address_type: str, field: str) -> list[dict]:
    if address_type == "FQDN":
        return validation.dns1123_subdomain(address, field)  # type: ignore[arg-type]
    try:
        ip = ipaddress.ip_address(address)  # type: ignore[arg-type]
    except ValueError:
        ip = None
    if ip is None or ip.version != (4 if address_type == "IPv4" else 6):
        return [invalid_value(field, address, f"must be a valid {address_type} address")]
    return []


class EndpointSliceStrategy(Strategy):
    kind = "EndpointSlice"
    has_generation = True

    def generation_changed(self, new: dict, old: dict) -> bool:
        """An EndpointSlice has no spec: anything but its metadata is, and so are its labels
        (kube's endpointSliceStrategy.PrepareForUpdate)."""
        def content(obj: dict) -> dict:
            return {k: v for k, v in obj.items() if k != "metadata"}
        return content(new) != content(old) or \
            new["metadata"].get("labels") != old["metadata"].get("labels")

    def default(self, obj: dict) -> None:
        for port in obj.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                port.setdefault("name", "")

    def validate(self, obj: dict) -> list[dict]:
        errors: list[dict] = []
        address_type = obj.get("addressType")
        if not address_type:
            errors.append(required("addressType"))
        elif address_type not in ADDRESS_TYPES:
            errors.append(not_supported("addressType", address_type, list(ADDRESS_TYPES)))
        endpoints = obj.get("endpoints") or []
        if not isinstance(endpoints, list):
            return errors + [invalid_value("endpoints", endpoints, "must be a list")]
        if len(endpoints) > MAX_ENDPOINTS:
            errors.append(_too_many("endpoints", len(endpoints), MAX_ENDPOINTS))
        for i, ep in enumerate(endpoints):
            errors += self._endpoint(ep, address_type, f"endpoints[{i}]")
        errors += self._ports(obj.get("ports") or [])
        return errors

    @staticmethod
    def _endpoint(ep: object, address_type: str, path: str) -> list[dict]:
        if not isinstance(ep, dict):
            return [invalid_value(path, ep, "must be an object")]
        errors: list[dict] = []
        addresses = ep.get("addresses") or []
        if not addresses:
            errors.append(required(f"{path}.addresses", "must contain at least 1 address"))
        elif len(addresses) > MAX_ADDRESSES:
            errors.append(_too_many(f"{path}.addresses", len(addresses), MAX_ADDRESSES))
        elif address_type in ADDRESS_TYPES:
            for j, address in enumerate(addresses):
                errors += _address_errors(address, address_type, f"{path}.addresses[{j}]")
        if ep.get("nodeName"):
            errors += validation.dns1123_subdomain(ep["nodeName"], f"{path}.nodeName")
        if ep.get("hostname"):
            errors += validation.dns1123_label(ep["hostname"], f"{path}.hostname")
        for key in ("ready", "serving", "terminating"):
            value = (ep.get("conditions") or {}).get(key)
            if value is not None and not isinstance(value, bool):
                errors.append(invalid_value(f"{path}.conditions.{key}", value,
                                            "must be a boolean"))
        return errors

    @staticmethod
    def _ports(ports: object) -> list[dict]:
        if not isinstance(ports, list):
            return [invalid_value("ports", ports, "must be a list")]
        errors: list[dict] = []
        if len(ports) > MAX_PORTS:
            errors.append(_too_many("ports", len(ports), MAX_PORTS))
        names: set[str] = set()
        for i, port in enumerate(ports):
            path = f"ports[{i}]"
            if not isinstance(port, dict):
                errors.append(invalid_value(path, port, "must be an object"))
                continue
            name = port.get("name") or ""
            if name:
                errors += validation.dns1123_label(name, f"{path}.name")
            if name in names:
                errors.append(duplicate(f"{path}.name", name))
            names.add(name)
            if port.get("protocol") not in PROTOCOLS:
                errors.append(not_supported(f"{path}.protocol", port.get("protocol"),
                                            list(PROTOCOLS)))
            number = port.get("port")
            if number is not None and (not isinstance(number, int) or
                                       not 0 < number < 65536):
                errors.append(invalid_value(f"{path}.port", number,
                                            "must be between 1 and 65535, inclusive"))
        return errors

    def validate_update(self, new: dict, old: dict) -> list[dict]:
        errors = self.validate(new)
        if new.get("addressType") != old.get("addressType"):
            errors.append(invalid_value("addressType", new.get("addressType"),
                                        "field is immutable"))
        return errors
