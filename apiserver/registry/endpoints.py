"""v1 Endpoints: the older form of a Service's endpoints, as kube's endpoints controller writes
it (subsets of addresses, notReadyAddresses and ports); defaults and ValidateEndpoints."""
from __future__ import annotations

import ipaddress

from kubeapi import validation
from kubeapi.status import duplicate, invalid_value, not_supported, required

from .strategy import Strategy

PROTOCOLS = ("SCTP", "TCP", "UDP")


class EndpointsStrategy(Strategy):
    kind = "Endpoints"

    def default(self, obj: dict) -> None:
        for subset in obj.get("subsets") or []:
            if not isinstance(subset, dict):
                continue
            for port in subset.get("ports") or []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")

    def validate(self, obj: dict) -> list[dict]:
        subsets = obj.get("subsets") or []
        if not isinstance(subsets, list):
            return [invalid_value("subsets", subsets, "must be a list")]
        errors: list[dict] = []
        for i, subset in enumerate(subsets):
            path = f"subsets[{i}]"
            if not isinstance(subset, dict):
                errors.append(invalid_value(path, subset, "must be an object"))
                continue
            if not subset.get("addresses") and not subset.get("notReadyAddresses"):
                errors.append(required(path, "must specify `addresses` or "
                                       "`notReadyAddresses`"))
            for key in ("addresses", "notReadyAddresses"):
                for j, address in enumerate(subset.get(key) or []):
                    errors += self._address(address, f"{path}.{key}[{j}]")
            ports = subset.get("ports") or []
            names: set[str] = set()
            for j, port in enumerate(ports):
                ppath = f"{path}.ports[{j}]"
                if not isinstance(port, dict):
                    errors.append(invalid_value(ppath, port, "must be an object"))
                    continue
                name = port.get("name") or ""
                if len(ports) > 1 and not name:
                    errors.append(required(f"{ppath}.name"))
                elif name:
                    errors += validation.dns1123_label(name, f"{ppath}.name")
                    if name in names:
                        errors.append(duplicate(f"{ppath}.name", name))
                    names.add(name)
                number = port.get("port")
                if not isinstance(number, int) or not 0 < number < 65536:
                    errors.append(invalid_value(f"{ppath}.port", number,
                                                "must be between 1 and 65535, inclusive"))
                if port.get("protocol") not in PROTOCOLS:
                    errors.append(not_supported(f"{ppath}.protocol", port.get("protocol"),
                                                list(PROTOCOLS)))
        return errors

    @staticmethod
    def _address(address: object, path: str) -> list[dict]:
        if not isinstance(address, dict):
            return [invalid_value(path, address, "must be an object")]
        ip = address.get("ip")
        try:
            ipaddress.ip_address(ip)  # type: ignore[arg-type]
        except ValueError:
            return [invalid_value(f"{path}.ip", ip, "must be a valid IP address")]
        errors = []
        if address.get("nodeName"):
            errors += validation.dns1123_subdomain(address["nodeName"], f"{path}.nodeName")
        if address.get("hostname"):
            errors += validation.dns1123_label(address["hostname"], f"{path}.hostname")
        return errors
